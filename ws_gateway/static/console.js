// The streamer's console on the dashboard: whole-stream trends with key-event markers, the product
// funnel, traffic sources, the benchmark diagnosis and live hot words.  Plain JS and SVG, no build
// step, no CDN; served by the gateway at /static/console.js.
//
// The gateway sends the whole console in a host's snapshot (msg.console) and only what changed in
// each update (msg.console is then a delta, see schemas/console.py: apply_delta below is the same
// rule).  DOM contract used by the browser tests: <section id="console">; funnel rows
// tr[data-sku="<sku_id>"] with td.impressions, td.clicks, td.ctr, td.attempts, td.accepted, td.paid,
// td.gmv, td.conversion; every marker on a chart is an SVG element with data-marker="<kind>".
"use strict";
(function () {
  const MAP_KEYS = ["skus", "sources", "totals", "headline", "followers"], LIST_KEYS = ["markers", "hot_words"];
  const SKU_CELLS = ["impressions", "clicks", "ctr", "attempts", "accepted", "paid", "gmv", "conversion"];
  const MARKER_COLORS = { sale_open: "#3ccf91", sale_close: "#9aa3c0", restock: "#5aa9ff", sold_out: "#ff5d6c",
                          pin: "#ffb547", unpin: "#8a6d3b", alert: "#ff8a3d", online_peak: "#c38bff" };
  const METRICS = {  // schemas/headline.py HEADLINE_LABELS
    avg_online: ["Average online", "float"], avg_watch_ms: ["Average watch time", "duration"],
    ctr: ["Product CTR", "percent"], conversion_rate: ["Conversion (buyers / viewers)", "percent"],
    gpm_cents: ["GPM (GMV per 1,000 viewers)", "money"], gmv_per_minute_cents: ["GMV per minute", "money"],
    follow_rate: ["New followers per viewer", "percent"], comments_per_viewer: ["Comments per viewer", "float"],
  };
  const CHARTS = [["online", "Online viewers", "int"], ["gmv_paid_cents", "GMV paid per minute", "money"],
                  ["comments", "Comments per minute", "int"]];
  const SVG = "http://www.w3.org/2000/svg";
  const state = window.__lcConsole = { view: null, snapshots: 0, updates: 0 };

  const int = (n) => (n ?? 0).toLocaleString("en-US");
  const money = (c) => "¥" + ((c ?? 0) / 100).toLocaleString("en-US", { maximumFractionDigits: 2 });
  const pct = (r) => r == null ? "–" : (100 * r).toFixed(1) + "%";
  const dur = (ms) => { if (ms == null) return "–"; const s = Math.round(ms / 1000); return s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`; };
  const fmt = (kind, v) => v == null ? "–" : kind === "money" ? money(v) : kind === "percent" ? pct(v)
    : kind === "duration" ? dur(v) : kind === "int" ? int(v) : Number(v).toFixed(2);

  function applyDelta(old, change) {
    if (!old) return Object.assign({}, change);
    const out = Object.assign({}, old), replace = new Set(change.replace || []);
    for (const [key, value] of Object.entries(change)) {
      if (key === "replace") continue;
      if (replace.has(key)) out[key] = value;
      else if (MAP_KEYS.includes(key)) out[key] = Object.assign({}, old[key], value);
      else if (key === "series") out[key] = Object.assign({}, old[key], { rows: old[key].rows.slice(0, value.from).concat(value.rows) });
      else if (LIST_KEYS.includes(key)) out[key] = old[key].slice(0, value.from).concat(value.items);
      else out[key] = value;
    }
    return out;
  }

  function el(tag, attrs, text) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  function layout(root) {
    root.innerHTML = `
      <h2>Streamer console</h2>
      <div class="cons-diag" id="cons-diag"><span class="empty">waiting for the console…</span></div>
      <div class="cons-charts" id="cons-charts"></div>
      <div class="cons-row">
        <div class="cons-funnel"><h3>Product funnel</h3>
          <table id="cons-funnel"><thead><tr><th>SKU</th><th>Impressions</th><th>Clicks</th><th>CTR</th>
            <th>Attempts</th><th>Accepted</th><th>Paid</th><th>GMV</th><th>Conversion</th></tr></thead><tbody></tbody></table>
        </div>
        <div class="cons-side">
          <h3>Audience</h3><div class="cons-kpis" id="cons-kpis"></div>
          <h3>Traffic sources</h3><div id="cons-sources"></div>
          <h3>Hot words</h3><div id="cons-words" class="cons-words"></div>
        </div>
      </div>`;
    const charts = root.querySelector("#cons-charts");
    for (const [field, title] of CHARTS) {
      const box = el("div", { class: "cons-chart" });
      box.append(el("h3", {}, title), el("svg:svg", { id: `cons-chart-${field}`, viewBox: "0 0 600 140", preserveAspectRatio: "none" }));
      charts.append(box);
    }
  }

  function chart(svg, view, field, kind) {
    const s = view.series, col = s.fields.indexOf(field), rows = s.rows;
    svg.replaceChildren();
    const W = 600, H = 140, L = 4, R = 70, T = 8, B = 16;
    if (!rows.length || col < 0) { svg.append(el("svg:text", { x: 8, y: 70, fill: "#8a91ad", "font-size": 12 }, "waiting for data…")); return; }
    const values = rows.map(r => r[col]), hi = Math.max(1, ...values);
    const span = Math.max(1, rows.length - 1) * s.step;
    const x = (ts) => L + (W - L - R) * Math.min(1, Math.max(0, (ts - s.start) / span));
    const y = (v) => H - B - (H - T - B) * v / hi;
    const pts = values.map((v, i) => `${x(s.start + i * s.step).toFixed(1)},${y(v).toFixed(1)}`);
    if (rows.length === 1) pts.push(`${x(s.start + s.step).toFixed(1)},${y(values[0]).toFixed(1)}`);
    svg.append(el("svg:polyline", { points: `${L},${H - B} ${pts.join(" ")} ${pts[pts.length - 1].split(",")[0]},${H - B}`, fill: "rgba(255,181,71,.12)", stroke: "none" }));
    svg.append(el("svg:polyline", { points: pts.join(" "), fill: "none", stroke: "#ffb547", "stroke-width": 2 }));
    for (const [ts, mkind, sku, label] of view.markers) {
      const mx = x(ts).toFixed(1), line = el("svg:line", { x1: mx, x2: mx, y1: T, y2: H - B, stroke: MARKER_COLORS[mkind] || "#fff",
        "stroke-width": 1.5, "stroke-dasharray": mkind === "alert" ? "2 3" : "4 2", "data-marker": mkind, "data-ts": ts });
      line.append(el("svg:title", {}, `${new Date(ts).toLocaleTimeString()} ${mkind}${sku ? " " + sku : ""}${label ? " · " + label : ""}`));
      svg.append(line);
    }
    const t0 = new Date(s.start).toLocaleTimeString(), t1 = new Date(s.start + (rows.length - 1) * s.step).toLocaleTimeString();
    svg.append(el("svg:text", { x: L, y: H - 3, fill: "#8a91ad", "font-size": 10 }, t0));
    svg.append(el("svg:text", { x: W - R, y: H - 3, fill: "#8a91ad", "font-size": 10, "text-anchor": "end" }, t1));
    svg.append(el("svg:text", { x: W - R + 6, y: 20, fill: "#e7e9f3", "font-size": 13, "font-weight": "bold" }, fmt(kind, values[values.length - 1])));
    svg.append(el("svg:text", { x: W - R + 6, y: 36, fill: "#8a91ad", "font-size": 10 }, "max " + fmt(kind, hi)));
  }

  function diagnosis(box, view) {
    const levels = Object.fromEntries((view.diagnosis || []).map(d => [d.metric, d]));
    box.replaceChildren(...Object.entries(METRICS).map(([name, [label, kind]]) => {
      const d = levels[name], div = el("div", { class: "cons-metric " + (d ? d.level : "none"), "data-metric": name });
      if (view.worst === name) div.classList.add("worst");
      div.append(el("div", { class: "l" }, label), el("div", { class: "v" }, fmt(kind, (view.headline || {})[name])),
        el("div", { class: "b" }, d ? `benchmark ${fmt(kind, d.benchmark)} · ${(100 * d.gap).toFixed(0)}%` : "no benchmark"));
      return div;
    }));
  }

  function funnel(tbody, view) {
    const idx = Object.fromEntries((view.sku_fields || []).map((f, i) => [f, i]));
    tbody.replaceChildren(...Object.keys(view.skus).sort().map(sku => {
      const r = view.skus[sku], tr = el("tr", { "data-sku": sku });
      if (sku === view.pinned) tr.classList.add("pinned");
      const values = { impressions: int(r[idx.impressions]), clicks: int(r[idx.clicks]), ctr: pct(r[idx.ctr]),
        attempts: int(r[idx.attempts]), accepted: int(r[idx.accepted]), paid: int(r[idx.paid]),
        gmv: money(r[idx.gmv_paid_cents]), conversion: pct(r[idx.conversion]) };
      tr.append(el("th", {}, sku), ...SKU_CELLS.map(c => el("td", { class: c }, values[c])));
      return tr;
    }));
  }

  function audience(view) {
    const t = view.totals, f = view.followers;
    $c("cons-kpis").replaceChildren(...[
      ["Viewers", int(t.viewers), "viewers"], ["Entries", int(t.entries), "entries"],
      ["Followers gained", int(t.follows), "follows"], ["Shares", int(t.shares), "shares"],
      ["Avg watch time", dur(t.avg_watch_ms), "avg-watch"], ["Peak online", int(t.peak_online), "peak-online"],
      ["Followers / non-followers", `${int(f.follower)} / ${int(f.non_follower)}${f.unknown ? ` (+${int(f.unknown)} ?)` : ""}`, "follower-split"],
    ].map(([label, value, key]) => { const d = el("div", { class: "cons-kpi", "data-kpi": key }); d.append(el("span", {}, label), el("b", {}, value)); return d; }));
    const sources = Object.entries(view.sources).sort((a, b) => b[1] - a[1]), total = Math.max(1, ...sources.map(s => s[1]));
    $c("cons-sources").replaceChildren(...sources.map(([name, n]) => {
      const row = el("div", { class: "cons-src", "data-source": name });
      const bar = el("div", { class: "cons-srcbar" }); bar.append(el("i", { style: `width:${(100 * n / total).toFixed(1)}%` }));
      row.append(el("span", {}, name.replace(/_/g, " ")), bar, el("b", {}, int(n)));
      return row;
    }));
    const words = view.hot_words || [], top = Math.max(1, ...words.map(w => w[1]));
    $c("cons-words").replaceChildren(...words.map(([w, n]) => el("span", { style: `font-size:${(12 + 12 * n / top).toFixed(0)}px`, title: `${n}×`, "data-word": w }, w)));
  }

  const $c = (id) => document.getElementById(id);

  function render() {
    const root = $c("console"), view = state.view;
    if (!root || !view) return;
    if (!$c("cons-charts")) layout(root);
    diagnosis($c("cons-diag"), view);
    for (const [field, , kind] of CHARTS) chart($c(`cons-chart-${field}`), view, field, kind);
    funnel($c("cons-funnel").tBodies[0], view);
    audience(view);
  }

  window.lcConsole = {
    applyDelta,
    snapshot(view) { state.snapshots++; state.view = view || null; render(); },
    update(change) { state.updates++; state.view = applyDelta(state.view, change); render(); },
  };
})();
