"use strict";
// A small line chart in plain SVG (nothing fetched at run time): readings around an alert, with
// a dashed line where the alert was raised.
window.lineChart = function lineChart(points, markTs, formatTime) {
  const ns = "http://www.w3.org/2000/svg";
  const width = 600, height = 160, left = 44, right = 8, top = 10, bottom = 22;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("preserveAspectRatio", "none");
  const el = (name, attrs, text) => {
    const node = document.createElementNS(ns, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    svg.appendChild(node);
    return node;
  };
  const values = points.map((p) => p.value);
  const t0 = Math.min(points[0].ts, markTs), t1 = Math.max(points[points.length - 1].ts, markTs);
  let v0 = Math.min(...values), v1 = Math.max(...values);
  if (v0 === v1) { v0 -= 1; v1 += 1; }
  const x = (ts) => left + (t1 === t0 ? 0 : (ts - t0) / (t1 - t0)) * (width - left - right);
  const y = (v) => top + (1 - (v - v0) / (v1 - v0)) * (height - top - bottom);
  el("polyline", { points: points.map((p) => `${x(p.ts).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ") });
  el("line", { class: "mark", x1: x(markTs), x2: x(markTs), y1: top, y2: height - bottom });
  el("text", { x: 2, y: top + 10 }, v1.toFixed(1));
  el("text", { x: 2, y: height - bottom }, v0.toFixed(1));
  el("text", { x: left, y: height - 4 }, formatTime(t0));
  el("text", { x: width - right, y: height - 4, "text-anchor": "end" }, formatTime(t1));
  return svg;
};
