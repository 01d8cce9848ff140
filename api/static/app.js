"use strict";
const TEXT = {
  "zh-CN": { title: "校园安全物联网监控", offline: "未连接", live: "实时", need_token: "请输入值班员令牌",
    sign_in: "登录", open_alerts: "未处理报警", critical: "紧急", unacked: "未确认", online: "设备在线",
    severity: "级别", alert: "报警", location: "位置", time: "时间", count: "次数", state: "状态",
    actions: "操作", no_alerts: "当前没有报警", ack: "确认", resolve: "处置完成", note: "处置说明",
    note_needed: "请填写处置说明", other: "English", incident: "事件", alerts_in: "个报警",
    devices_in: "个设备", storm: "报警风暴", expand: "展开", collapse: "收起", ack_all: "全部确认",
    unreadable: "实时消息无法读取，报警列表可能不完整，请刷新页面",
    states: { active: "报警中", acknowledged: "已确认", cleared: "已恢复", resolved: "已处置" },
    sev: { critical: "紧急", major: "重大", warning: "警告", info: "提示" } },
  "en": { title: "Campus Safety Monitor", offline: "offline", live: "live", need_token: "Enter your operator token",
    sign_in: "Sign in", open_alerts: "Open alerts", critical: "Critical", unacked: "Unacknowledged",
    online: "Devices online", severity: "Severity", alert: "Alert", location: "Location", time: "Time",
    count: "Count", state: "State", actions: "Actions", no_alerts: "No open alerts", ack: "Acknowledge",
    resolve: "Resolve", note: "note", note_needed: "A resolution needs a note", other: "中文",
    incident: "Incident", alerts_in: "alerts", devices_in: "devices", storm: "alarm storm", expand: "Show",
    collapse: "Hide", ack_all: "Acknowledge all",
    unreadable: "A live message could not be read: the list may be incomplete. Reload the page.",
    states: { active: "active", acknowledged: "acknowledged", cleared: "cleared", resolved: "resolved" },
    sev: { critical: "critical", major: "major", warning: "warning", info: "info" } },
};
const SEVERITY_RANK = { critical: 3, major: 2, warning: 1, info: 0 };
let lang = localStorage.getItem("lang") || "zh-CN";
const alerts = new Map();
const incidents = new Map();
const expanded = new Set();
let token = "";
let unreadable = false;  // a live message failed: the board may miss alerts until the next snapshot
const hashToken = new URLSearchParams(location.hash.slice(1)).get("token");
if (hashToken) { localStorage.setItem("token", hashToken); history.replaceState(null, "", location.pathname); }
token = localStorage.getItem("token") || "";

const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[lang][key];

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-t]")) {
    const key = el.dataset.t;
    if (key === "offline" && $("conn").classList.contains("live")) { el.textContent = t("live"); continue; }
    el.textContent = t(key);
  }
  $("lang").textContent = t("other");
  document.title = t("title");
  render();
}

function fmtTime(ts) { return new Date(ts * 1000).toLocaleString(lang); }

function render() {
  const body = $("alerts");
  // Most urgent first: severity, then not yet acknowledged, then newest.
  const open = [...alerts.values()].filter((a) => a.state !== "resolved").sort((a, b) =>
    (SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity]) ||
    ((a.acknowledged_at === null ? 0 : 1) - (b.acknowledged_at === null ? 0 : 1)) || (b.last_seen - a.last_seen));
  // Alerts of an incident with several alerts are shown under one line (a fire is one line, not forty).
  const grouped = new Map();
  for (const incident of incidents.values()) {
    if (incident.closed_at === null && incident.open_alert_ids.length > 1) grouped.set(incident.id, incident);
  }
  const incidentOf = new Map();
  for (const incident of grouped.values()) for (const id of incident.open_alert_ids) incidentOf.set(id, incident.id);
  const rows = [];
  const shown = new Set();
  for (const a of open) {
    const incidentId = incidentOf.get(a.id);
    if (incidentId === undefined) { rows.push(row(a)); continue; }
    if (shown.has(incidentId)) continue;
    shown.add(incidentId);
    const incident = grouped.get(incidentId);
    const members = open.filter((m) => incidentOf.get(m.id) === incidentId);
    rows.push(incidentRow(incident, members));
    if (expanded.has(incidentId)) members.forEach((m) => { const r = row(m); r.classList.add("member"); rows.push(r); });
  }
  body.replaceChildren(...rows);
  // Never claim "no alarms" while a message may have been lost.
  $("empty").hidden = open.length > 0 || unreadable;
  $("warning").hidden = !unreadable;
  $("count-open").textContent = open.length;
  $("count-critical").textContent = open.filter((a) => a.severity === "critical").length;
  $("count-unacked").textContent = open.filter((a) => a.acknowledged_at === null).length;
}

function incidentRow(incident, members) {
  const tr = document.createElement("tr");
  tr.className = `incident ${incident.severity}`;
  tr.dataset.incidentId = incident.id;
  const rules = [...new Set(members.map((m) => m.title[lang]))].join("、");
  const label = `${t("incident")} #${incident.id} · ${incident.building || "-"}` +
    (incident.storm ? ` · ${t("storm")}` : "");
  const cells = [TEXT[lang].sev[incident.severity] || incident.severity, label, rules,
                 fmtTime(incident.last_alert_at), `${members.length} ${t("alerts_in")}`,
                 `${incident.devices} ${t("devices_in")}`];
  cells.forEach((value) => { const td = document.createElement("td"); td.textContent = value; tr.appendChild(td); });
  const actions = document.createElement("td");
  const toggle = document.createElement("button");
  toggle.className = "toggle";
  toggle.textContent = expanded.has(incident.id) ? t("collapse") : t("expand");
  toggle.onclick = () => { expanded.has(incident.id) ? expanded.delete(incident.id) : expanded.add(incident.id); render(); };
  actions.appendChild(toggle);
  if (members.some((m) => m.acknowledged_at === null)) {
    const ackAll = document.createElement("button");
    ackAll.className = "ack-all"; ackAll.textContent = t("ack_all");
    ackAll.onclick = async () => {
      await api(`/api/v1/incidents/${incident.id}/ack`, { method: "POST" });
    };
    actions.appendChild(ackAll);
  }
  tr.appendChild(actions);
  return tr;
}

function row(a) {
  const tr = document.createElement("tr");
  tr.className = `${a.severity} state-${a.state}`;
  tr.dataset.alertId = a.id;
  tr.dataset.rule = a.rule;
  const cells = [TEXT[lang].sev[a.severity] || a.severity, a.title[lang], a.location, fmtTime(a.last_seen), a.count,
                 TEXT[lang].states[a.state] || a.state];
  cells.forEach((value, i) => {
    const td = document.createElement("td");
    td.textContent = value;
    if (i === 0) td.className = "sev";
    if (i === 5) td.className = "state";
    tr.appendChild(td);
  });
  const actions = document.createElement("td");
  if (a.acknowledged_at === null) {
    const ack = document.createElement("button");
    ack.textContent = t("ack"); ack.className = "ack";
    ack.onclick = () => act(a.id, "ack");
    actions.appendChild(ack);
  }
  const note = document.createElement("input");
  note.className = "note"; note.placeholder = t("note");
  const resolve = document.createElement("button");
  resolve.textContent = t("resolve"); resolve.className = "resolve";
  resolve.onclick = () => {
    if (!note.value.trim()) { note.placeholder = t("note_needed"); note.focus(); return; }
    act(a.id, "resolve", { note: note.value.trim() });
  };
  actions.append(note, resolve);
  tr.appendChild(actions);
  return tr;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json", ...(options.headers || {}) },
  });
  if (response.status === 401) { signOut(); throw new Error("unauthorized"); }
  if (!response.ok) throw new Error(`${response.status}`);
  return response.json();
}

async function act(id, verb, body) {
  const updated = await api(`/api/v1/alerts/${id}/${verb}`, { method: "POST", body: JSON.stringify(body || {}) });
  upsert(updated);
}

let renderPending = false;
function scheduleRender() {
  // A storm pushes hundreds of messages a second: draw at most ten times a second.
  if (renderPending) return;
  renderPending = true;
  setTimeout(() => { renderPending = false; render(); }, 100);
}

function upsert(a) {
  const isNewCritical = !alerts.has(a.id) && a.severity === "critical" && a.state === "active";
  alerts.set(a.id, a);
  if (a.state === "resolved") alerts.delete(a.id);
  scheduleRender();
  if (isNewCritical) beep();
}

async function refreshIncidents() {
  try {
    const open = await api("/api/v1/incidents");
    incidents.clear(); open.forEach((i) => incidents.set(i.id, i)); scheduleRender();
  } catch (e) { /* the stream indicator shows the connection state */ }
}

function beep() {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    osc.frequency.value = 880; osc.connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + 0.4);
  } catch (e) { /* sound is best effort: browsers may block audio until the page is clicked */ }
}

async function refreshSummary() {
  try {
    const s = await api("/api/v1/summary");
    $("count-online").textContent = `${s.devices.online}/${s.devices.total}`;
  } catch (e) { /* shown as offline by the stream indicator */ }
}

let retryMs = 500;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/stream?token=${encodeURIComponent(token)}`);
  ws.onopen = () => { retryMs = 500; $("conn").classList.add("live"); $("conn").textContent = t("live"); };
  ws.onmessage = (event) => {
    // A message that does not parse, or is not what it should be, must not blank the board:
    // keep what is shown, log it, and warn that the list may be incomplete.
    try {
      handle(JSON.parse(event.data));
    } catch (error) {
      console.error("live stream: unreadable message", error, String(event.data).slice(0, 500));
      unreadable = true;
      render();
    }
  };
  ws.onclose = (event) => {
    $("conn").classList.remove("live"); $("conn").textContent = t("offline");
    if (event.code === 4401) { signOut(); return; }
    setTimeout(connect, retryMs); retryMs = Math.min(retryMs * 2, 10000);
  };
}

function handle(message) {
  if (message.type === "snapshot") {
    const fresh = new Map(message.alerts.map((a) => [a.id, a]));
    alerts.clear(); fresh.forEach((a, id) => alerts.set(id, a));
    unreadable = false;  // the snapshot is the whole truth again
    render(); refreshIncidents();
  }
  else if (message.type === "alert") upsert(message.alert);
  else if (message.type === "incident") { incidents.set(message.incident.id, message.incident); scheduleRender(); }
  else if (message.type === "device") refreshSummary();
}

function signOut() { localStorage.removeItem("token"); token = ""; showLogin(); }
function showLogin() { $("login").hidden = false; $("board").hidden = true; }
function start() {
  $("login").hidden = true; $("board").hidden = false;
  connect(); refreshSummary(); setInterval(refreshSummary, 15000);
}

$("lang").onclick = () => { lang = lang === "zh-CN" ? "en" : "zh-CN"; localStorage.setItem("lang", lang); applyLanguage(); };
$("token-save").onclick = () => { token = $("token-input").value.trim(); localStorage.setItem("token", token); start(); };
applyLanguage();
if (token) start(); else showLogin();
