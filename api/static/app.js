"use strict";
// The security room's console: alerts, floor plans, devices, alert detail and tickets, over the
// REST API and the live stream. Everything that changes arrives on the stream; the page redraws
// in place (rows keyed by id), so typed notes survive and rows hold still under the pointer.

const SEVERITY_RANK = { critical: 3, major: 2, warning: 1, info: 0 };
const FAULT_RULES = new Set(["device_fault", "tamper", "low_battery", "clock_skew", "unknown_device"]);
const OFFLINE_RULES = new Set(["device_offline"]);
const UNITS = { temperature_c: "°C", humidity_pct: "%", residual_current_ma: "mA", obscuration_pct_m: "%/m",
  voc_ppm: "ppm", lel_pct: "%LEL", battery_pct: "%", current_a_1: "A", current_a_2: "A", current_a_3: "A",
  temp_c_1: "°C", temp_c_2: "°C", temp_c_3: "°C", temp_c_4: "°C" };
const MUTE_MINUTES = [5, 15, 30, 60];

const state = {
  lang: localStorage.getItem("lang") || "zh-CN",
  token: "",
  unreadable: false,  // a live message failed: the board may miss alerts until the next snapshot
  timezone: "Asia/Shanghai",
  alerts: new Map(), incidents: new Map(), devices: new Map(), people: [], plans: [], tickets: [],
  expanded: new Set(),
  view: localStorage.getItem("view") || "alerts",
  plan: localStorage.getItem("plan") || "",
  online: false, lastUpdate: null,
  detail: null,  // {type: "alert"|"device"|"ticket", id}
  pointerInTable: false,
};
window.missingText = [];

const $ = (id) => document.getElementById(id);

function lookup(key) {
  let value = window.I18N[state.lang];
  for (const part of key.split(".")) value = value === undefined ? undefined : value[part];
  return value;
}
// A UI string by key ("sev.critical" for nested ones), with {name} filled from vars.
function t(key, vars) {
  let text = lookup(key);
  if (typeof text !== "string") {
    if (!window.missingText.includes(`${state.lang}:${key}`)) window.missingText.push(`${state.lang}:${key}`);
    text = key.split(".").pop();
  }
  for (const [name, value] of Object.entries(vars || {})) text = text.replace(`{${name}}`, value);
  return text;
}

const formats = new Map();
function formatter(kind) {
  const key = `${state.lang}|${state.timezone}|${kind}`;
  if (!formats.has(key)) {
    const options = kind === "clock" ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
      : kind === "date" ? { year: "numeric", month: "2-digit", day: "2-digit" }
      : { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" };
    formats.set(key, new Intl.DateTimeFormat(state.lang === "en" ? "en-GB" : "zh-CN",
      { ...options, hourCycle: "h23", timeZone: state.timezone }));
  }
  return formats.get(key);
}
// Times in the campus time zone, as the exports show them, whatever the browser's own zone.
const fmtTime = (ts) => (ts === null || ts === undefined ? "–" : formatter("full").format(new Date(ts * 1000)));
const fmtClock = (ts) => formatter("clock").format(new Date(ts * 1000));
const fmtDate = (ts) => (ts === null || ts === undefined ? "–" : formatter("date").format(new Date(ts * 1000)));

function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("ago_s", { n: s });
  if (s < 3600) return t("ago_m", { n: Math.floor(s / 60) });
  if (s < 86400) return t("ago_h", { n: Math.floor(s / 3600) });
  return t("ago_d", { n: Math.floor(s / 86400) });
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// A button that changes something on the gateway: disabled while the gateway is unreachable.
function actionButton(label, className, onclick) {
  const button = el("button", { type: "button", class: `act ${className || ""}`.trim(), text: label });
  button.addEventListener("click", () => { if (state.online) onclick(); else toast(t("refused_offline"), true); });
  button.disabled = !state.online;
  return button;
}

let toastTimer = null;
function toast(message, isError) {
  const box = $("toast");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, isError ? 8000 : 3000);
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const method = options.method || "GET";
  if (method !== "GET" && !state.online) throw new ApiError(0, t("refused_offline"));
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  if (options.body && !(options.body instanceof FormData)) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    throw new ApiError(0, t("refused_offline"));
  }
  if (response.status === 401) { signOut(t("login_wrong")); throw new ApiError(401, t("login_wrong")); }
  if (!response.ok) {
    let reason = `${response.status}`;
    try { reason = refusalText((await response.json()).detail); }
    catch (e) { /* not JSON */ }
    throw new ApiError(response.status, reason);
  }
  markUpdate();
  return response.json();
}

// A refusal in the operator's language where the server names its reasons (ticket blockers).
function refusalText(detail) {
  if (typeof detail === "string") return detail;
  if (detail && Array.isArray(detail.blockers) && detail.blockers.length) {
    return detail.blockers.map((b) => t(`blocker.${b.code}`)).join(t("list_sep"));
  }
  if (detail && detail.message) return detail.message;
  return JSON.stringify(detail);
}

// Runs an operator action: failures become a message on screen, never an uncaught error.
async function act(work, doneMessage) {
  try {
    const result = await work();
    if (doneMessage) toast(doneMessage);
    return result;
  } catch (e) {
    toast(e.status === 0 ? e.message : t("action_failed", { reason: e.message }), true);
    return undefined;
  }
}

function markUpdate() { state.lastUpdate = Date.now() / 1000; }

// ---- alerts board -------------------------------------------------------------------------

const rows = new Map();  // key -> <tr>, reused so inputs keep what the operator typed

function openAlerts() {
  // Most urgent first: needs attention, then severity, then newest.
  return [...state.alerts.values()].filter((a) => a.state !== "resolved").sort((a, b) =>
    (Number(b.attention) - Number(a.attention)) || (SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity]) ||
    (b.last_seen - a.last_seen) || (b.id - a.id));
}

function boardEntries(open) {
  const grouped = new Map();
  for (const incident of state.incidents.values()) {
    if (incident.closed_at === null && incident.open_alert_ids.length > 1) grouped.set(incident.id, incident);
  }
  const incidentOf = new Map();
  for (const incident of grouped.values()) for (const id of incident.open_alert_ids) incidentOf.set(id, incident.id);
  const entries = [];
  const shown = new Set();
  for (const a of open) {
    const incidentId = incidentOf.get(a.id);
    if (incidentId === undefined) { entries.push({ key: `a${a.id}`, alert: a }); continue; }
    if (shown.has(incidentId)) continue;
    shown.add(incidentId);
    const members = open.filter((m) => incidentOf.get(m.id) === incidentId);
    entries.push({ key: `i${incidentId}`, incident: grouped.get(incidentId), members });
    if (state.expanded.has(incidentId)) for (const m of members) entries.push({ key: `m${m.id}`, alert: m, member: true });
  }
  return entries;
}

function boardFrozen() {
  const focused = document.activeElement;
  return state.pointerInTable || (focused !== null && $("alerts").contains(focused));
}

function renderBoard() {
  const open = openAlerts();
  const entries = boardEntries(open);
  const byKey = new Map(entries.map((e) => [e.key, e]));
  let order = entries.map((e) => e.key);
  if (boardFrozen()) {
    // Hold the rows still under the pointer: keep the drawn order, add new rows below it.
    const drawn = [...$("alerts").children].map((tr) => tr.dataset.key).filter((key) => byKey.has(key));
    order = [...drawn, ...order.filter((key) => !drawn.includes(key))];
  }
  const body = $("alerts");
  order.forEach((key, index) => {
    const entry = byKey.get(key);
    let tr = rows.get(key);
    if (tr === undefined) { tr = entry.incident ? incidentRow(entry) : alertRow(entry); rows.set(key, tr); }
    if (entry.incident) updateIncidentRow(tr, entry); else updateAlertRow(tr, entry);
    if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
  });
  for (const [key, tr] of rows) if (!byKey.has(key)) { tr.remove(); rows.delete(key); }
  $("empty").hidden = open.length > 0 || state.unreadable;
  $("warning").hidden = !state.unreadable;
  $("count-open").textContent = open.length;
  $("count-critical").textContent = open.filter((a) => a.severity === "critical").length;
  $("count-unacked").textContent = open.filter((a) => a.attention).length;
  sound.want(open.some((a) => a.attention && a.severity === "critical"));
}

const COLUMNS = ["severity", "alert", "location", "time", "count", "state", "actions"];
function cells(tr) {
  COLUMNS.forEach((name) => tr.appendChild(el("td", { class: name })));
  return tr.children;
}
function labelCells(tr) { [...tr.children].forEach((td, i) => { td.dataset.label = t(COLUMNS[i]); }); }

function alertRow(entry) {
  const a = entry.alert;
  const tr = el("tr", { "data-alert-id": a.id, "data-rule": a.rule, "data-key": entry.key });
  const [, title, , , , , actions] = cells(tr);
  title.appendChild(el("a", { href: "#", class: "open-detail", onclick: (e) => { e.preventDefault(); showAlert(a.id); } }));
  const note = el("input", { class: "note" });
  const ack = actionButton("", "ack", () => act(async () => upsert(await api(`/api/v1/alerts/${a.id}/ack`, { method: "POST" }))));
  const resolve = actionButton("", "resolve", () => {
    if (!note.value.trim()) { note.dataset.needed = "1"; note.placeholder = t("note_needed"); note.focus(); return; }
    act(async () => upsert(await api(`/api/v1/alerts/${a.id}/resolve`,
      { method: "POST", body: JSON.stringify({ note: note.value.trim() }) })));
  });
  actions.append(ack, note, resolve);
  return tr;
}

function stateText(a) {
  return a.attention && a.acknowledged_at !== null ? t("repeated") : t(`states.${a.state}`);
}

function updateAlertRow(tr, entry) {
  const a = entry.alert;
  const [sev, title, location, time, count, stateCell] = tr.children;
  tr.className = `${a.severity} state-${a.state}${a.attention ? " attention" : ""}${entry.member ? " member" : ""}`;
  sev.textContent = t(`sev.${a.severity}`);
  title.firstChild.textContent = a.title[state.lang] || a.rule;
  location.textContent = [a.device_name, a.location].filter(Boolean).join(" · ");
  time.textContent = fmtTime(a.last_seen);
  count.textContent = a.count;
  stateCell.textContent = stateText(a);
  const ack = tr.querySelector("button.ack");
  ack.hidden = !a.attention;
  ack.textContent = a.acknowledged_at === null ? t("ack") : t("ack_again");
  tr.querySelector("button.resolve").textContent = t("resolve");
  const note = tr.querySelector("input.note");
  note.placeholder = note.dataset.needed ? t("note_needed") : t("note");
  labelCells(tr);
}

function incidentRow(entry) {
  const id = entry.incident.id;
  const tr = el("tr", { "data-incident-id": id, "data-key": entry.key });
  const actions = cells(tr)[6];
  actions.append(
    el("button", { type: "button", class: "toggle", onclick: () => {
      if (state.expanded.has(id)) state.expanded.delete(id); else state.expanded.add(id);
      renderBoard();
    } }),
    actionButton("", "ack-all", () => act(() => api(`/api/v1/incidents/${id}/ack`, { method: "POST" }))),
  );
  return tr;
}

function updateIncidentRow(tr, entry) {
  const { incident, members } = entry;
  const [sev, title, location, time, count, stateCell] = tr.children;
  const waiting = members.filter((m) => m.attention).length;
  tr.className = `incident ${incident.severity}${waiting ? " attention" : ""}`;
  sev.textContent = t(`sev.${incident.severity}`);
  const rules = [...new Set(members.map((m) => m.title[state.lang] || m.rule))].join(t("list_sep"));
  title.textContent = `${t("incident")} #${incident.id} · ${members.length} ${t("alerts_in")}` +
    (incident.storm ? ` · ${t("storm")}` : "") + ` · ${rules}`;
  location.textContent = `${incident.building || "–"} · ${incident.devices} ${t("devices_in")}`;
  time.textContent = fmtTime(incident.last_alert_at);
  count.textContent = members.reduce((sum, m) => sum + m.count, 0);
  stateCell.textContent = waiting ? `${waiting} ${t("n_unacked")}` : t("all_acked");
  tr.querySelector("button.toggle").textContent = state.expanded.has(incident.id) ? t("collapse") : t("expand");
  const ackAll = tr.querySelector("button.ack-all");
  ackAll.textContent = t("ack_all");
  ackAll.hidden = waiting === 0;
  labelCells(tr);
}

function upsert(a) {
  if (a.state === "resolved") state.alerts.delete(a.id); else state.alerts.set(a.id, a);
  scheduleRender();
  if (state.detail && state.detail.type === "alert" && state.detail.id === a.id) refreshDetail();
}

let renderPending = false;
function scheduleRender() {
  // A storm pushes hundreds of messages a second: draw at most once a frame. A timer, not
  // requestAnimationFrame, so a page in a background tab still sounds the alarm.
  if (renderPending) return;
  renderPending = true;
  setTimeout(() => { renderPending = false; renderAll(); }, 16);
}

// Stream message to DOM update, in ms (performance.now), for bench/console.py.
window.renderLatencies = [];
let messagesWaiting = [];

function renderAll() {
  renderBoard();
  if (state.view === "plans") renderPlan();
  if (state.view === "devices") renderDevices();
  const drawn = performance.now();
  if (window.renderLatencies.length < 100000) for (const at of messagesWaiting) window.renderLatencies.push(drawn - at);
  messagesWaiting = [];
}

// ---- devices and plans ------------------------------------------------------------------

function deviceAlerts(id) {
  return [...state.alerts.values()].filter((a) => a.device_id === id && a.state !== "resolved");
}

function deviceState(device) {
  const active = deviceAlerts(device.id).filter((a) => a.state === "active" || a.state === "acknowledged");
  if (active.some((a) => !FAULT_RULES.has(a.rule) && !OFFLINE_RULES.has(a.rule))) return "alarm";
  if (active.some((a) => FAULT_RULES.has(a.rule))) return "fault";
  if (device.maintenance) return "maintenance";
  if (device.online === false || active.some((a) => OFFLINE_RULES.has(a.rule))) return "offline";
  if (device.online === null) return "unknown";
  return "normal";
}

function planKey(plan) { return `${plan.building}|${plan.floor}`; }

function renderPlanPicker() {
  const picker = $("plan-picker");
  picker.replaceChildren(...state.plans.map((plan) => {
    const attention = plan.device_ids.some((id) => deviceAlerts(id).some((a) => a.attention));
    return el("button", { type: "button", class: attention ? "danger" : "", "data-plan": planKey(plan),
      "aria-selected": String(planKey(plan) === state.plan),
      onclick: () => { state.plan = planKey(plan); localStorage.setItem("plan", state.plan); renderPlan(); } },
    `${plan.building || "–"} ${plan.floor}`.trim());
  }));
}

function renderPlan() {
  if (!state.plans.find((p) => planKey(p) === state.plan) && state.plans.length) state.plan = planKey(state.plans[0]);
  renderPlanPicker();
  const plan = state.plans.find((p) => planKey(p) === state.plan);
  const img = $("plan-img");
  const markers = $("plan-markers");
  const side = $("plan-unplaced");
  if (!plan) { markers.replaceChildren(); side.replaceChildren(); img.hidden = true; return; }
  const src = plan.image_url ? `${plan.image_url}&token=${encodeURIComponent(state.token)}` : "";
  if (img.dataset.src !== src) { img.dataset.src = src; if (src) img.src = src; else img.removeAttribute("src"); }
  img.hidden = !src;
  $("plan-no-image").hidden = Boolean(src);
  const devices = plan.device_ids.map((id) => state.devices.get(id)).filter(Boolean);
  const sized = img.naturalWidth > 0 && src;
  const placed = sized ? devices.filter((d) => d.x !== null && d.y !== null) : [];
  const unplaced = devices.filter((d) => !placed.includes(d));
  markers.replaceChildren(...placed.map((d) => {
    const devState = deviceState(d);
    const marker = el("button", { type: "button", class: `marker dev-${devState}`, "data-device-id": d.id,
      "data-state": devState, title: `${d.name || d.id} · ${t(`dev_${devState}`)}`, onclick: () => showDevice(d.id) },
    el("span", { class: "label", text: d.name || d.id }));
    if (deviceAlerts(d.id).some((a) => a.attention)) marker.classList.add("pulse");
    marker.style.left = `${(100 * d.x) / img.naturalWidth}%`;
    marker.style.top = `${(100 * d.y) / img.naturalHeight}%`;
    return marker;
  }));
  side.replaceChildren(...unplaced.map((d) => {
    const devState = deviceState(d);
    return el("li", {}, el("a", { href: "#", class: "unplaced-device", "data-device-id": d.id, "data-state": devState,
      onclick: (e) => { e.preventDefault(); showDevice(d.id); } },
    el("span", { class: `dot dev-${devState}` }), `${d.name || d.id} · ${t(`dev_${devState}`)}`));
  }));
}

function renderDevices() {
  const filter = $("device-filter").value.trim().toLowerCase();
  const body = $("devices");
  const list = [...state.devices.values()].filter((d) =>
    !filter || [d.id, d.name, d.building, d.floor, d.zone, d.kind].join(" ").toLowerCase().includes(filter));
  const rank = { alarm: 0, fault: 1, offline: 2, maintenance: 3, unknown: 4, normal: 5 };
  list.sort((a, b) => (rank[deviceState(a)] - rank[deviceState(b)]) || a.id.localeCompare(b.id));
  const labels = ["status", "name", "kind", "location", "last_seen", "values"];
  body.replaceChildren(...list.map((d) => {
    const devState = deviceState(d);
    const values = Object.entries(d.last_values).map(([k, v]) => `${k} ${v}${UNITS[k] || ""}`).join(t("list_sep"));
    const tr = el("tr", { "data-device-id": d.id, class: `dev-row state-${devState}` },
      el("td", {}, el("span", { class: `dot dev-${devState}` }), t(`dev_${devState}`)),
      el("td", {}, el("a", { href: "#", text: d.name || d.id, onclick: (e) => { e.preventDefault(); showDevice(d.id); } })),
      el("td", { text: t(`kinds.${d.kind}`) }),
      el("td", { text: [d.building, d.floor, d.zone].filter(Boolean).join(" ") }),
      el("td", { text: fmtTime(d.last_seen) }),
      el("td", { text: values }));
    [...tr.children].forEach((td, i) => { td.dataset.label = t(labels[i]); });
    return tr;
  }));
}

async function refreshDevices() {
  try {
    const list = await api("/api/v1/devices");
    state.devices = new Map(list.map((d) => [d.id, d]));
    const online = list.filter((d) => d.online).length;
    $("count-online").textContent = `${online}/${list.length}`;
    renderAll();
  } catch (e) { /* the connection banner shows the gateway state */ }
}

async function refreshPlans() {
  try { state.plans = await api("/api/v1/plans"); renderPlan(); } catch (e) { /* shown by the banner */ }
}

// ---- detail panel -----------------------------------------------------------------------

// The panel sits below the header, so sound and connection controls stay in reach.
function placeDetail() { $("detail").style.top = `${document.querySelector("header").offsetHeight}px`; }
function openDetail(type, id) { state.detail = { type, id }; placeDetail(); $("detail").hidden = false; }
function closeDetail() { state.detail = null; $("detail").hidden = true; $("detail-body").replaceChildren(); }

function detailBusy() {
  // Never redraw over what the operator is typing.
  const body = $("detail-body");
  if (body.querySelector(".evidence-player.playing")) return true;  // nor over a clip being watched
  return [...body.querySelectorAll("input, textarea, select")].some((input) =>
    input === document.activeElement || (input.type !== "file" && input.dataset.dirty === "1"));
}

function refreshDetail() {
  if (!state.detail || detailBusy()) return;
  const { type, id } = state.detail;
  if (type === "alert") showAlert(id); else if (type === "device") showDevice(id); else showTicket(id);
}

function facts(pairs) {
  const dl = el("dl", { class: "facts" });
  for (const [label, value, attrs] of pairs) dl.append(el("dt", { text: label }), el("dd", { text: value, ...(attrs || {}) }));
  return dl;
}

// Device events by name; one the catalogue does not know is shown as the device sent it.
function eventText(name) { return typeof lookup(`events.${name}`) === "string" ? t(`events.${name}`) : name; }

function triggerText(a) {
  const d = a.details || {};
  const parts = [];
  if (d.rise_per_min !== undefined) parts.push(`${d.rise_per_min} °C/min`);
  if (d.value !== undefined) parts.push(`${d.value} ${UNITS[d.metric] || ""}`.trim());
  if (d.event) parts.push(eventText(d.event));
  for (const key of ["button", "person_id", "occupancy"]) if (d[key] !== undefined) parts.push(`${t(`attrs.${key}`)} ${d[key]}`);
  for (const key of ["authorised_badges", "unauthorised_badges"]) {
    if (Array.isArray(d[key]) && d[key].length) parts.push(`${t(`attrs.${key}`)}: ${d[key].join(t("list_sep"))}`);
  }
  if (d.reason) parts.push(d.reason);
  return parts.join(" · ") || "–";
}

async function showAlert(id) {
  openDetail("alert", id);
  let found;
  try { found = await api(`/api/v1/alerts/${id}`); } catch (e) { toast(t("action_failed", { reason: e.message }), true); return; }
  if (!state.detail || state.detail.type !== "alert" || state.detail.id !== id) return;
  const a = found.alert;
  const now = Date.now() / 1000;
  let ticket = null;
  try { ticket = await api(`/api/v1/alerts/${id}/ticket`); } catch (e) { ticket = null; }
  const body = el("div", { class: "alert-detail", "data-alert-id": a.id });
  body.append(el("h2", { text: `${t(`sev.${a.severity}`)} · ${a.title[state.lang] || a.rule}` }));
  body.append(el("p", {}, el("span", { class: "big-value trigger", text: triggerText(a) })));
  body.append(facts([
    [t("device"), `${a.device_name || a.device_id} (${a.device_id})`],
    [t("location"), a.location],
    [t("state"), stateText(a), { class: "alert-state" }],
    [t("first_seen"), fmtTime(a.first_seen)],
    [t("last_seen_alert"), fmtTime(a.last_seen)],
    [t("count"), String(a.count)],
    [t("since"), fmtDuration(now - a.first_seen)],
    [t("acked_by"), a.acknowledged_by ? `${a.acknowledged_by} · ${fmtTime(a.acknowledged_at)}` : t("not_acked"), { class: "acked-by" }],
  ]));
  const actions = el("div", { class: "row" });
  if (a.attention) {
    actions.append(actionButton(a.acknowledged_at === null ? t("ack") : t("ack_again"), "ack primary",
      () => act(async () => upsert(await api(`/api/v1/alerts/${id}/ack`, { method: "POST" })))));
  }
  if (ticket) actions.append(el("button", { type: "button", class: "view-ticket", text: `${t("view_ticket")} #${ticket.id}`, onclick: () => showTicket(ticket.id) }));
  else {
    actions.append(actionButton(t("open_ticket"), "open-ticket", () => act(async () => {
      const created = await api("/api/v1/tickets", { method: "POST", body: JSON.stringify({ alert_id: id }) });
      toast(t("ticket_created", { id: created.id }));
      refreshTickets();
      showTicket(created.id);
    })));
  }
  body.append(actions);
  if (a.details && a.details.snapshot) {
    body.append(el("h3", { text: t("snapshot") }),
      el("img", { class: "snapshot", alt: t("snapshot"), src: `/api/v1/snapshots/${encodeURIComponent(a.details.snapshot)}?token=${encodeURIComponent(state.token)}` }));
  }
  // Alarm evidence: the snapshot of the press and the clip around it, or why there is none.
  for (const video of (a.details && Array.isArray(a.details.evidence)) ? a.details.evidence : []) {
    body.append(el("h3", { text: `${t("evidence")} · ${video.camera}` }));
    if (!video.available) {
      body.append(el("p", { class: "evidence-unavailable", text: t(`evidence_reasons.${video.reason}`) }));
      continue;
    }
    const token = `?token=${encodeURIComponent(state.token)}`;
    body.append(evidencePlayer(video, token),
      el("p", {}, el("a", { class: "evidence-clip", href: `${video.clip}${token}`, download: true, text: t("evidence_clip") })));
  }
  const metric = a.details && (a.details.metric || (a.rule === "heat_rate_of_rise" ? "temperature_c" : null));
  const chartBox = el("div", { class: "chart-box" });
  body.append(el("h3", { text: `${t("readings")}${metric ? ` · ${metric}` : ""}` }), chartBox);
  body.append(el("h3", { text: t("audit") }), el("ol", { class: "trail" }, ...found.audit.map((entry) =>
    el("li", { text: `${fmtTime(entry.ts)} · ${entry.actor} · ${t(`audit_actions.${entry.action}`)}${entry.detail ? ` · ${entry.detail}` : ""}` }))));
  $("detail-body").replaceChildren(body);
  if (metric) {
    const from = a.first_seen - 600, to = Math.min(now, Math.max(a.last_seen, a.first_seen) + 600);
    try {
      const series = await api(`/api/v1/devices/${encodeURIComponent(a.device_id)}/readings?metric=${encodeURIComponent(metric)}&from=${from}&to=${to}`);
      chartBox.replaceChildren(series.points.length > 1 ? window.lineChart(series.points, a.first_seen, fmtClock)
        : el("p", { class: "muted", text: t("no_readings") }));
    } catch (e) { chartBox.replaceChildren(el("p", { class: "muted", text: t("no_readings") })); }
  } else chartBox.replaceChildren(el("p", { class: "muted", text: t("none") }));
}

// The clip as a browser can show it (it cannot play MJPEG AVI): the clip's own JPEG frames,
// stepped through at their capture times, with the seconds before or after the alarm. Shows the
// snapshot until the clip is written (about 10 s after the press), asking every 2 s.
function evidencePlayer(video, query) {
  const frame = el("img", { class: "snapshot evidence-frame", alt: t("evidence"), src: `${video.snapshot}${query}` });
  const offset = el("span", { class: "evidence-offset muted", text: t("evidence_recording") });
  const slider = el("input", { type: "range", class: "evidence-slider", min: "0", max: "0", value: "0", disabled: true,
    "aria-label": t("evidence_position") });
  const play = el("button", { type: "button", class: "evidence-play", text: t("evidence_play"), disabled: true });
  const box = el("div", { class: "evidence-player", "data-evidence-id": video.id }, frame,
    el("div", { class: "row" }, play, slider, offset));
  let frames = [], at = 0, timer = null;
  const show = (index) => {
    at = index;
    const current = frames[index];
    frame.src = `${current.url}${query}`;
    slider.value = String(index);
    box.dataset.frame = String(index);
    box.dataset.offset = String(current.offset_s);
    const seconds = Math.abs(current.offset_s).toFixed(1);
    offset.textContent = t(current.offset_s < 0 ? "evidence_before" : "evidence_after", { s: seconds });
  };
  const stop = () => {
    clearTimeout(timer);
    timer = null;
    box.classList.remove("playing");
    play.textContent = t("evidence_play");
  };
  // How long frame `i` stays: until the next one's capture time (bounded, for a gap in the ring).
  const shownFor = (i) => Math.min(Math.max(((frames[i + 1] || frames[i]).ts - frames[i].ts) * 1000, 40), 5000);
  const step = () => {
    if (!box.isConnected || at + 1 >= frames.length) { stop(); return; }
    show(at + 1);
    timer = setTimeout(step, shownFor(at));
  };
  play.addEventListener("click", () => {
    if (timer !== null) { stop(); return; }
    if (at + 1 >= frames.length) show(0);
    box.classList.add("playing");
    play.textContent = t("evidence_pause");
    timer = setTimeout(step, shownFor(at));
  });
  slider.addEventListener("input", () => { stop(); show(Number(slider.value)); });
  const load = async (tries) => {
    if (tries > 0 && !box.isConnected) return;
    let list;
    try { list = await api(`${video.frames || `/api/v1/evidence/${video.id}/frames`}`); } catch (e) {
      if (e.status === 404 && tries < 30) setTimeout(() => load(tries + 1), 2000);
      else offset.textContent = t("evidence_no_clip");
      return;
    }
    if (!list.frames.length) { offset.textContent = t("evidence_no_clip"); return; }
    frames = list.frames;
    for (const f of frames) new Image().src = `${f.url}${query}`;  // fetched ahead, so play does not stall
    slider.max = String(frames.length - 1);
    slider.disabled = false;
    play.disabled = false;
    box.classList.add("ready");
    show(0);
  };
  load(0);
  return box;
}

async function showDevice(id) {
  openDetail("device", id);
  let found;
  try { found = await api(`/api/v1/devices/${encodeURIComponent(id)}`); } catch (e) { toast(t("action_failed", { reason: e.message }), true); return; }
  if (!state.detail || state.detail.type !== "device" || state.detail.id !== id) return;
  const d = found.device;
  const devState = deviceState(d);
  const body = el("div", { class: "device-detail", "data-device-id": d.id });
  body.append(el("h2", {}, el("span", { class: `dot dev-${devState}` }), `${d.name || d.id} · ${t(`dev_${devState}`)}`));
  body.append(facts([
    [t("device"), d.id], [t("kind"), t(`kinds.${d.kind}`)],
    [t("location"), [d.building, d.floor, d.zone].filter(Boolean).join(" ")],
    [t("last_seen"), fmtTime(d.last_seen)],
    [t("responsible"), d.responsible || "–"],
    [t("values"), Object.entries(d.last_values).map(([k, v]) => `${k} ${v}${UNITS[k] || ""}`).join(t("list_sep")) || "–"],
  ]));
  const alerts = deviceAlerts(d.id);
  body.append(el("h3", { text: t("open_alerts_of_device") }));
  if (!alerts.length) body.append(el("p", { class: "muted", text: t("none") }));
  for (const a of alerts) {
    const line = el("div", { class: `row device-alert ${a.severity}`, "data-alert-id": a.id },
      el("span", { text: `${t(`sev.${a.severity}`)} · ${a.title[state.lang] || a.rule} · ${stateText(a)} · ${fmtTime(a.last_seen)}` }));
    if (a.attention) line.append(actionButton(a.acknowledged_at === null ? t("ack") : t("ack_again"), "ack",
      () => act(async () => { upsert(await api(`/api/v1/alerts/${a.id}/ack`, { method: "POST" })); showDevice(id); })));
    line.append(el("button", { type: "button", class: "show-alert", text: t("detail"), onclick: () => showAlert(a.id) }));
    body.append(line);
  }
  body.append(el("h3", { text: t("recent_events") }), el("ol", { class: "trail" }, ...found.recent_events.map((e) =>
    el("li", { text: `${fmtTime(e.ts)} · ${eventText(e.name)}` }))));
  $("detail-body").replaceChildren(body);
}

// ---- tickets ------------------------------------------------------------------------------

async function refreshTickets() {
  const params = new URLSearchParams();
  if ($("ticket-state").value) params.append("state", $("ticket-state").value);
  if ($("ticket-level").value) params.append("level", $("ticket-level").value);
  if ($("ticket-overdue").checked) params.append("overdue", "true");
  try { state.tickets = await api(`/api/v1/tickets?${params}`); } catch (e) { return; }
  renderTickets();
}

function renderTickets() {
  const labels = ["level", "ticket", "location", "responsible", "deadline", "state"];
  $("tickets").replaceChildren(...state.tickets.map((ticket) => {
    const tr = el("tr", { "data-ticket-id": ticket.id, class: ticket.level === "major" ? "major" : "info" },
      el("td", { text: t(`levels.${ticket.level}`) }),
      el("td", {}, el("a", { href: "#", text: `#${ticket.id} ${ticket.title}`, onclick: (e) => { e.preventDefault(); showTicket(ticket.id); } })),
      el("td", { text: ticket.location }),
      el("td", { text: ticket.responsible ? ticket.responsible.name : t("unassigned") }),
      el("td", { text: `${fmtDate(ticket.deadline_ts)}${ticket.overdue ? ` · ${t("overdue")}` : ""}`, class: ticket.overdue ? "error" : "" }),
      el("td", { class: "ticket-state", text: t(`ticket_states.${ticket.state}`) }));
    [...tr.children].forEach((td, i) => { td.dataset.label = t(labels[i]); });
    return tr;
  }));
  $("tickets-empty").hidden = state.tickets.length > 0;
}

function historyText(action) {
  const [verb, target] = action.split(":");
  if (lookup(`ticket_actions.${verb}`) === undefined) return action;  // a newer server's action: as sent
  return target ? `${t(`ticket_actions.${verb}`)} ${t(`ticket_states.${target}`)}` : t(`ticket_actions.${verb}`);
}

// The campus-time end of a calendar day ("2026-12-01"), as Unix seconds.
function campusDayEnd(day) {
  const [y, m, d] = day.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d, 23, 59, 59);
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: state.timezone, hourCycle: "h23",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
    .formatToParts(new Date(guess)).map((p) => [p.type, p.value]));
  const shown = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour) % 24,
    Number(parts.minute), Number(parts.second));
  return (guess - (shown - guess)) / 1000;
}
function campusDay(ts) {
  if (ts === null || ts === undefined) return "";
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: state.timezone, year: "numeric",
    month: "2-digit", day: "2-digit" }).formatToParts(new Date(ts * 1000)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

function personSelect(name, selected) {
  const select = el("select", { name, class: name },
    el("option", { value: "", text: t("choose") }),
    ...state.people.map((p) => el("option", { value: p.id, text: `${p.name}${p.role ? ` · ${p.role}` : ""}`, selected: p.id === selected })));
  return select;
}

function markDirty(form) {
  form.addEventListener("input", (e) => { e.target.dataset.dirty = "1"; });
  form.addEventListener("change", (e) => { e.target.dataset.dirty = "1"; });
}

async function showTicket(id) {
  openDetail("ticket", id);
  let detail;
  try { detail = await api(`/api/v1/tickets/${id}`); } catch (e) { toast(t("action_failed", { reason: e.message }), true); return; }
  if (!state.detail || state.detail.type !== "ticket" || state.detail.id !== id) return;
  const ticket = detail.ticket;
  const body = el("div", { class: "ticket-detail", "data-ticket-id": ticket.id, "data-state": ticket.state });
  markDirty(body);
  const reload = () => { refreshTickets(); for (const input of body.querySelectorAll("[data-dirty]")) delete input.dataset.dirty; showTicket(id); };
  const send = (path, method, payload) => act(async () => { await api(path, { method, body: JSON.stringify(payload) }); reload(); }, t("saved"));
  body.append(el("h2", { text: `#${ticket.id} ${ticket.title}` }));
  body.append(facts([
    [t("state"), t(`ticket_states.${ticket.state}`), { class: "ticket-state" }],
    [t("level"), t(`levels.${ticket.level}`)], [t("category"), t(`categories.${ticket.category}`)],
    [t("location"), ticket.location],
    [t("discovered"), `${fmtTime(ticket.discovered_at)} · ${ticket.discovered_by}`],
    [t("deadline"), `${fmtDate(ticket.deadline_ts)}${ticket.overdue ? ` · ${t("overdue")}` : ""}`],
    [t("alert"), ticket.alert_ids.map((a) => `#${a}`).join(t("list_sep")) || "–"],
  ]));

  const assign = el("div", { class: "row" }, el("span", { text: t("responsible") }), personSelect("responsible", ticket.responsible_id));
  assign.append(actionButton(t("assign"), "assign", () => {
    const chosen = assign.querySelector("select").value;
    if (chosen) send(`/api/v1/tickets/${id}/assign`, "POST", { version: ticket.version, responsible_id: chosen });
  }));
  body.append(assign);

  const form = el("div", { class: "form-grid ticket-form" },
    el("label", { text: t("measures") }), el("textarea", { name: "measures", rows: 2 }),
    el("label", { text: t("funds") }), el("input", { name: "funds", type: "number", min: 0, step: "0.01" }),
    el("label", { text: t("deadline") }), el("input", { name: "deadline", type: "date" }),
    el("label", { text: t("contingency") }), el("textarea", { name: "contingency", rows: 2 }),
    el("label", { text: t("verifier") }), personSelect("verifier", ticket.verifier_id));
  form.querySelector("[name=measures]").value = ticket.measures;
  form.querySelector("[name=funds]").value = ticket.funds_cny === null ? "" : ticket.funds_cny;
  form.querySelector("[name=deadline]").value = campusDay(ticket.deadline_ts);
  form.querySelector("[name=contingency]").value = ticket.contingency_plan;
  body.append(form, el("div", { class: "row" }, actionButton(t("save"), "save primary", () => {
    const funds = form.querySelector("[name=funds]").value;
    const deadline = form.querySelector("[name=deadline]").value;
    const verifier = form.querySelector("select.verifier").value;
    send(`/api/v1/tickets/${id}`, "PATCH", { version: ticket.version,
      measures: form.querySelector("[name=measures]").value,
      funds_cny: funds === "" ? null : Number(funds), deadline_ts: deadline ? campusDayEnd(deadline) : null,
      contingency_plan: form.querySelector("[name=contingency]").value, verifier_id: verifier || null });
  })));

  if (detail.close_blockers.length && ticket.state === "pending_verification") {
    body.append(el("h3", { text: t("blockers") }), el("ul", { class: "blockers" },
      ...detail.close_blockers.map((b) => el("li", { "data-code": b.code, text: t(`blocker.${b.code}`) }))));
  }
  if (ticket.allowed_transitions.length) {
    const note = el("input", { class: "transition-note", placeholder: t("note_optional") });
    const moves = el("div", { class: "row transitions" }, el("span", { text: t("to_state") }), note);
    for (const target of ticket.allowed_transitions) {
      moves.append(actionButton(t(`ticket_states.${target}`), `to-${target}`, () => {
        const verifier = form.querySelector("select.verifier").value || ticket.verifier_id;
        send(`/api/v1/tickets/${id}/transition`, "POST",
          { version: ticket.version, to: target, verifier_id: target === "closed" ? verifier : null, note: note.value });
      }));
    }
    body.append(moves);
  }

  body.append(el("h3", { text: t("photos") }));
  const file = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp", class: "photo-file" });
  body.append(el("div", { class: "row" }, file, actionButton(t("add_photo"), "add-photo", () => {
    if (!file.files.length) return;
    const data = new FormData();
    data.append("file", file.files[0]);
    act(async () => { await api(`/api/v1/tickets/${id}/photos`, { method: "POST", body: data }); reload(); }, t("saved"));
  })));
  for (const photo of detail.photos) {
    body.append(el("img", { class: "photo", alt: photo.filename, src: `${photo.url}?token=${encodeURIComponent(state.token)}` }));
  }
  body.append(el("h3", { text: t("comments") }), el("ol", { class: "trail" },
    ...detail.comments.map((c) => el("li", { text: `${fmtTime(c.ts)} · ${c.actor} · ${c.text}` }))));
  body.append(el("h3", { text: t("history") }), el("ol", { class: "trail" },
    ...detail.history.map((h) => el("li", { text: `${fmtTime(h.ts)} · ${h.actor} · ${historyText(h.action)}` }))));
  $("detail-body").replaceChildren(body);
}

// ---- liveness, sign-in, language ----------------------------------------------------------

function setOnline(online) {
  state.online = online;
  const conn = $("conn");
  conn.classList.toggle("live", online);
  conn.textContent = online ? t("live") : t("offline");
  document.body.classList.toggle("offline", !online && !$("board").hidden);
  const banner = $("offline-banner");
  banner.hidden = online || $("board").hidden;
  banner.textContent = state.lastUpdate ? t("banner_offline", { time: fmtClock(state.lastUpdate) }) : t("banner_never");
  for (const button of document.querySelectorAll("button.act")) button.disabled = !online;
}

let socket = null;
let retryMs = 500;
let retryTimer = null;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/stream?token=${encodeURIComponent(state.token)}`);
  socket = ws;
  ws.onopen = () => {
    retryMs = 500;
    markUpdate();
    setOnline(true);
    // Resync what may have changed while away.
    refreshIncidents(); refreshDevices(); refreshPlans(); refreshTickets(); refreshSummary(); refreshPeople();
  };
  ws.onmessage = (event) => {
    messagesWaiting.push(performance.now());
    markUpdate();
    // A message that does not parse, or is not what it should be, must not blank the board:
    // keep what is shown, log it, and warn that the list may be incomplete.
    try {
      handleMessage(JSON.parse(event.data));
    } catch (error) {
      console.error("live stream: unreadable message", error, String(event.data).slice(0, 500));
      state.unreadable = true;
      scheduleRender();
    }
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    setOnline(false);
    if (event.code === 4401) { signOut(t("login_wrong")); return; }
    if (event.code === 4403) { signOut(t("login_forbidden")); return; }
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };
}

function handleMessage(message) {
  if (message.type === "snapshot") {
      state.alerts.clear();
      message.alerts.forEach((a) => state.alerts.set(a.id, a));
      state.unreadable = false;  // the snapshot is the whole truth again
      scheduleRender();
    } else if (message.type === "alert") upsert(message.alert);
    else if (message.type === "incident") { state.incidents.set(message.incident.id, message.incident); scheduleRender(); }
    else if (message.type === "device") {
      // The stream does not carry maintenance windows: keep what the REST API said.
      const known = state.devices.get(message.device.id);
      state.devices.set(message.device.id, { ...message.device, maintenance: known ? known.maintenance : false });
      scheduleRender();
    }
}

async function refreshIncidents() {
  try {
    const open = await api("/api/v1/incidents");
    state.incidents.clear();
    open.forEach((i) => state.incidents.set(i.id, i));
    scheduleRender();
  } catch (e) { /* the banner shows the connection state */ }
}

async function refreshSummary() {
  try {
    const summary = await api("/api/v1/summary");
    $("campus").textContent = summary.campus.name || summary.campus.id;
    if (summary.campus.timezone && summary.campus.timezone !== state.timezone) { state.timezone = summary.campus.timezone; renderAll(); }
    $("count-online").textContent = `${summary.devices.online}/${summary.devices.total}`;
  } catch (e) { /* shown by the banner */ }
}

async function refreshPeople() {
  try { state.people = await api("/api/v1/people"); } catch (e) { state.people = []; }
}

function showLogin(message) {
  $("login").hidden = false; $("board").hidden = true; $("offline-banner").hidden = true;
  document.body.classList.remove("offline");
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
  $("token-input").focus();
}

function signOut(message) {
  localStorage.removeItem("token");
  state.token = "";
  clearTimeout(retryTimer);
  if (socket) { const ws = socket; socket = null; ws.close(); }
  closeDetail();
  showLogin(message);
}

// Checks a token before showing the board, so a wrong one is said, not silently sent back.
async function signIn(token) {
  let response;
  try {
    response = await fetch("/api/v1/incidents", { headers: { Authorization: `Bearer ${token}` } });
  } catch (e) { showLogin(t("banner_never")); return; }
  if (response.status === 401) { showLogin(t("login_wrong")); return; }
  if (response.status === 403) { showLogin(t("login_forbidden")); return; }
  state.token = token;
  localStorage.setItem("token", token);
  $("login").hidden = true; $("board").hidden = false;
  showView(state.view);
  connect();
}

function showView(view) {
  state.view = view;
  localStorage.setItem("view", view);
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const tab of document.querySelectorAll("#tabs button")) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  renderAll();
  if (view === "tickets") renderTickets();
}

function fillSelect(select, options) {
  const chosen = select.value;
  select.replaceChildren(...options.map(([value, label]) => el("option", { value, text: label })));
  if (options.some(([value]) => value === chosen)) select.value = chosen;
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const node of document.querySelectorAll("[data-tp]")) node.placeholder = t(node.dataset.tp);
  $("lang").textContent = t("other");
  document.title = t("title");
  fillSelect($("sound-minutes"), MUTE_MINUTES.map((m) => [String(m), `${m} ${t("minutes")}`]));
  fillSelect($("ticket-state"), [["", `${t("state")}: ${t("all")}`],
    ...Object.keys(window.I18N.en.ticket_states).map((s) => [s, t(`ticket_states.${s}`)])]);
  fillSelect($("ticket-level"), [["", `${t("level")}: ${t("all")}`],
    ...Object.keys(window.I18N.en.levels).map((s) => [s, t(`levels.${s}`)])]);
  setOnline(state.online);
  soundChanged(sound);
  renderAll();
  renderTickets();
  refreshDetail();
}

function soundChanged(alarm) {
  const status = alarm.state();
  document.body.dataset.sound = status;
  document.body.dataset.beeps = String(alarm.beeps);
  const text = { disabled: "", ready: t("sound_on"), playing: t("sound_playing"), blocked: t("sound_blocked"),
    muted: t("sound_muted_until", { time: fmtClock(alarm.mutedUntil / 1000) }) }[status];
  if ($("sound-state").textContent !== text) $("sound-state").textContent = text;
  $("sound-enable").hidden = status !== "disabled" && status !== "blocked";
  $("sound-mute").textContent = status === "muted" ? t("sound_unmute") : t("sound_mute");
  $("sound-minutes").hidden = status === "muted";
}

const sound = new window.AlarmSound(soundChanged);

function init() {
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "zh-CN" ? "en" : "zh-CN";
    localStorage.setItem("lang", state.lang);
    applyLanguage();
  });
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) { showLogin(t("login_empty")); return; }
    if ($("login-sound").checked) sound.enable();  // the sign-in click is what lets audio start
    signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("sound-enable").addEventListener("click", () => sound.enable());
  // Sound turned on in an earlier session starts with the operator's first click or key here.
  for (const type of ["click", "keydown"]) {
    document.addEventListener(type, () => { if (sound.enabled && !sound.running) sound.enable(); }, true);
  }
  $("sound-test").addEventListener("click", () => sound.test());
  $("sound-mute").addEventListener("click", () => {
    if (sound.muted) sound.unmute(); else sound.mute(Number($("sound-minutes").value));
  });
  for (const tab of document.querySelectorAll("#tabs button")) tab.addEventListener("click", () => showView(tab.dataset.view));
  $("detail-close").addEventListener("click", closeDetail);
  $("device-filter").addEventListener("input", renderDevices);
  for (const id of ["ticket-state", "ticket-level", "ticket-overdue"]) $(id).addEventListener("change", refreshTickets);
  const table = $("alert-table");
  table.addEventListener("mouseenter", () => { state.pointerInTable = true; });
  table.addEventListener("mouseleave", () => { state.pointerInTable = false; scheduleRender(); });
  $("alerts").addEventListener("focusout", () => setTimeout(scheduleRender, 0));
  $("plan-img").addEventListener("load", renderPlan);
  window.addEventListener("resize", placeDetail);
  // The stream can stay open to a gateway that hangs: poll health too.
  setInterval(async () => {
    if (!state.token || !socket) return;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 4000);
    try {
      const response = await fetch("/api/v1/health", { signal: controller.signal });
      if (response.ok) markUpdate();
    } catch (e) { if (socket) socket.close(); }
    finally { clearTimeout(timer); }
  }, 5000);
  setInterval(() => { if (state.online) { refreshSummary(); refreshDevices(); } }, 15000);
  applyLanguage();
  const hashToken = new URLSearchParams(location.hash.slice(1)).get("token");
  if (hashToken) history.replaceState(null, "", location.pathname);
  const token = hashToken || localStorage.getItem("token") || "";
  if (token) signIn(token); else showLogin("");
}

init();
