// The host's control console (直播中控台) on the dashboard: pin a product, open / close / restock a flash sale.
// No build step, no CDN; served by the gateway at /static/host.js and loaded by dashboard.html, which gives it
// two hooks: window.lcSend(message) (send on the dashboard's websocket) and the "lc:message" window event (every
// message the gateway sent).  Shown only when the token says role "host"; that reading is for the page only,
// the gateway checks every host_action itself (docs/gateway.md).
//
// Every action goes through a confirmation step, then is sent with a console-chosen event_id (the idempotency
// key): resent with the same key until the gateway acknowledges it, so a lost answer never opens a sale twice.
// What the page shows of each action: "sent" -> "in Kafka" (the ack: both the audit record and the sale command
// were delivered) -> "applied" (the flash-sale job's sale-config-applied, seen in the room's sales; for pins, the
// room's pinned card), or "refused" with the gateway's code and reason.  Texts from elsewhere go in textContent.
"use strict";
(function () {
  const section = document.getElementById("host-console");
  const token = new URLSearchParams(location.search).get("token");
  const RESEND_AFTER_MS = 3000;

  function tokenRole() {
    try { return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).role || null; }
    catch (e) { return null; }
  }
  if (!section || !token || tokenRole() !== "host") return;

  // What the console knows; `hc` is also what a browser test inspects.
  const hc = window.__hc = { pinned: null, sales: {}, actions: [], confirming: null };
  const $ = (id) => document.getElementById(id);
  const money = (cents) => cents == null ? "–" : "¥" + (cents / 100).toFixed(2);
  const hms = (ms) => new Date(ms).toLocaleTimeString("en-GB");
  const VERBS = { pin: "Pin", unpin: "Unpin", open_sale: "Open sale", close_sale: "Close sale", restock: "Restock" };

  const style = document.createElement("style");
  style.textContent = `
    #host-console { grid-column: span 12; }
    #host-console .hc-row { display:flex; flex-wrap:wrap; gap:10px; align-items:flex-end; margin:8px 0; }
    #host-console label { display:flex; flex-direction:column; font-size:11px; color:var(--muted); gap:3px; }
    #host-console input { font:inherit; color:var(--text); background:#10152a; border:1px solid var(--line); border-radius:6px;
                          padding:5px 8px; width:130px; }
    #host-console input[type=datetime-local] { width:200px; }
    #host-console button { font:inherit; border:0; border-radius:6px; padding:7px 12px; color:#fff; background:#39405e; cursor:pointer; }
    #host-console button.go { background:#c2143f; } #host-console button.ok { background:#1f6f4c; }
    #hc-confirm { margin:8px 0; padding:10px; border-radius:8px; background:#2a2140; border-left:4px solid var(--accent); }
    #hc-confirm span { margin-right:12px; }
    #hc-sales { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; margin-top:6px; }
    #hc-sales th, #hc-sales td { text-align:left; padding:3px 8px; border-bottom:1px solid var(--line); font-size:13px; }
    #hc-log { list-style:none; margin:6px 0 0; padding:0; max-height:150px; overflow:auto; font-size:13px; }
    #hc-log li { padding:3px 8px; margin:2px 0; border-left:3px solid var(--muted); background:#1e2438; border-radius:4px; }
    #hc-log li[data-status=applied] { border-color:var(--pos); } #hc-log li[data-status=refused] { border-color:var(--neg); }
    #hc-log li[data-status=acked] { border-color:var(--res); }
    #hc-pinned { color:var(--accent); }`;
  document.head.appendChild(style);

  section.innerHTML = `
    <h2>Host console</h2>
    <div>Pinned now: <b id="hc-pinned">nothing</b></div>
    <div class="hc-row">
      <label>SKU<input id="hc-sku" maxlength="64" placeholder="sku-1"></label>
      <label>Title<input id="hc-title" maxlength="200" placeholder="optional"></label>
      <button id="hc-pin" type="button">Pin</button><button id="hc-unpin" type="button">Unpin</button>
    </div>
    <div class="hc-row">
      <label>Price (¥)<input id="hc-price" type="number" min="0" step="0.01" value="99.00"></label>
      <label>Stock<input id="hc-stock" type="number" min="0" step="1" value="100"></label>
      <label>Starts<input id="hc-start" type="datetime-local" step="1"></label>
      <label>Ends<input id="hc-end" type="datetime-local" step="1"></label>
      <label>Per person<input id="hc-limit" type="number" min="1" step="1" value="1"></label>
      <label>Hold (s)<input id="hc-ttl" type="number" min="1" step="1" value="300"></label>
      <button id="hc-open" type="button" class="go">Open sale</button>
    </div>
    <div class="hc-row">
      <label>Units to add<input id="hc-units" type="number" min="1" step="1" value="50"></label>
      <button id="hc-restock" type="button">Restock</button><button id="hc-close" type="button">Close sale</button>
    </div>
    <div id="hc-confirm" hidden><span id="hc-confirm-text"></span>
      <button id="hc-confirm-yes" type="button" class="ok">Confirm</button><button id="hc-confirm-no" type="button">Back</button>
    </div>
    <table id="hc-sales"><thead><tr><th>SKU</th><th>sale</th><th>price</th><th>left / total</th><th>ends</th></tr></thead>
      <tbody><tr><td colspan="5" class="empty">no sale yet</td></tr></tbody></table>
    <ul id="hc-log"></ul>`;
  section.hidden = false;

  // datetime-local values are local time without a zone: the browser's clock and zone, both ways.
  function localInput(ms) {
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 19);
  }
  function resetTimes() { const now = Date.now(); $("hc-start").value = localInput(now); $("hc-end").value = localInput(now + 600000); }
  resetTimes();

  function randomKey() {
    const bytes = new Uint8Array(10);
    crypto.getRandomValues(bytes);
    return "h" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  const int = (id) => { const v = $(id).value.trim(); return /^\d+$/.test(v) ? Number(v) : NaN; };

  // The frame of one action and its sentence for the confirmation, or an error sentence.
  function draft(verb) {
    const sku = $("hc-sku").value.trim(), title = $("hc-title").value.trim();
    if (!/^[A-Za-z0-9_.:\-]{1,64}$/.test(sku)) return { error: "SKU: 1-64 characters of A-Z a-z 0-9 _ . : -" };
    const frame = { type: "host_action", action: verb, sku_id: sku };
    if (verb === "pin") {
      if (title) frame.title = title;
      return { frame, text: `Pin ${sku}${title ? " (" + title + ")" : ""} over the live video?` };
    }
    if (verb === "unpin") return { frame, text: `Take ${sku} off the live video?` };
    if (verb === "close_sale") return { frame, text: `Close the sale of ${sku} now? Holds stay payable until they expire.` };
    if (verb === "restock") {
      const units = int("hc-units");
      if (!(units >= 1)) return { error: "Units to add: a whole number of at least 1" };
      frame.stock = units;
      return { frame, text: `Add ${units.toLocaleString("en-US")} units to the sale of ${sku}?` };
    }
    const price = Math.round(Number($("hc-price").value) * 100), stock = int("hc-stock");
    const starts = new Date($("hc-start").value).getTime(), ends = new Date($("hc-end").value).getTime();
    const limit = int("hc-limit"), ttl = int("hc-ttl");
    if (!(price >= 0) || $("hc-price").value.trim() === "") return { error: "Price: a number of yuan, 0 or more" };
    if (!(stock >= 0)) return { error: "Stock: a whole number, 0 or more" };
    if (!(starts > 0) || !(ends > 0)) return { error: "Starts and Ends: pick a date and time" };
    if (ends <= starts) return { error: "Ends must be after Starts" };
    if (!(limit >= 1) || !(ttl >= 1)) return { error: "Per person and Hold: whole numbers of at least 1" };
    Object.assign(frame, { stock, price_cents: price, starts_at: starts, ends_at: ends, per_user_limit: limit,
                           reservation_ttl_s: ttl });
    if (title) frame.title = title;
    return { frame, text: `Open a flash sale of ${sku}: ${stock.toLocaleString("en-US")} units at ${money(price)}, ` +
                          `${hms(starts)} to ${hms(ends)}, ${limit} per person, ${ttl} s to pay?` };
  }

  function ask(verb) {
    const d = draft(verb);
    if (d.error) { log({ verb, sku: $("hc-sku").value.trim(), status: "refused", detail: d.error, local: true }); return; }
    hc.confirming = d.frame;
    $("hc-confirm-text").textContent = d.text;
    $("hc-confirm").hidden = false;
    $("hc-confirm-yes").focus();
  }

  function confirmYes() {
    const frame = hc.confirming;
    if (!frame) return;
    hc.confirming = null; $("hc-confirm").hidden = true;
    const key = randomKey();
    const entry = { key, verb: frame.action, sku: frame.sku_id, status: "sent", detail: "", frame: { ...frame, event_id: key, ref: key },
                    sentAt: 0, tries: 0, event_id: null };
    hc.actions.push(entry);
    transmit(entry);
    if (frame.action === "open_sale") resetTimes();
  }

  function transmit(entry) {
    entry.tries += 1; entry.sentAt = Date.now();
    if (!window.lcSend || !window.lcSend(entry.frame)) entry.detail = "not connected: will send again";
    renderLog();
  }

  function log(entry) { hc.actions.push({ key: "local" + hc.actions.length, ...entry }); renderLog(); }

  function onAck(entry, msg) {
    if (entry.status !== "sent") return;
    entry.status = "acked"; entry.event_id = msg.event_id;
    entry.detail = entry.verb.endsWith("pin") ? "in Kafka: waiting for the card to change" : "in Kafka: waiting for the flash sale to apply it";
    settle();
  }

  // An acknowledged action is applied once the room shows it: the sale's last config is this action's, or the card moved.
  function settle() {
    for (const e of hc.actions) {
      if (e.status !== "acked") continue;
      const sale = hc.sales[e.sku];
      if (["open_sale", "close_sale", "restock"].includes(e.verb) && sale && sale.event_id === e.event_id) {
        e.status = "applied"; e.detail = `applied by the flash sale: ${sale.state}`;
      } else if (e.verb === "pin" && hc.pinned && hc.pinned.sku_id === e.sku) {
        e.status = "applied"; e.detail = "viewers see it pinned";
      } else if (e.verb === "unpin" && (!hc.pinned || hc.pinned.sku_id !== e.sku)) {
        e.status = "applied"; e.detail = "off the video";
      }
    }
  }

  function handle(msg) {
    if (msg.type === "snapshot") {
      hc.pinned = msg.pinned || null; hc.sales = msg.sales || {};
    } else if (msg.type === "update") {
      if ("pinned" in msg) hc.pinned = msg.pinned;
      if (msg.sales) Object.assign(hc.sales, msg.sales);
    } else if ((msg.type === "ack" || msg.type === "error") && msg.ref) {
      const entry = hc.actions.find((e) => e.key === msg.ref);
      if (entry && msg.type === "ack") onAck(entry, msg);
      if (entry && msg.type === "error" && entry.status === "sent") {
        if (msg.code === "produce_failed" || msg.code === "rate_limited") { entry.detail = `${msg.code}: sending again`; }
        else { entry.status = "refused"; entry.detail = `${msg.code}: ${msg.message}`; }
      }
    }
    settle();
    render();
  }

  function render() { renderPinned(); renderSales(); renderLog(); }

  function renderPinned() {
    const p = hc.pinned;
    $("hc-pinned").textContent = !p ? "nothing" : p.sku_id + (p.title ? " · " + p.title : "") +
      (p.price_cents != null ? " · " + money(p.price_cents) : "") + (p.state ? " · sale " + p.state : "");
  }

  function renderSales() {
    const skus = Object.keys(hc.sales).sort();
    if (!skus.length) return;
    const stock = (window.__lc && window.__lc.stock) || {}, now = Date.now();
    $("hc-sales").tBodies[0].replaceChildren(...skus.map((sku) => {
      const s = hc.sales[sku], st = stock[sku], tr = document.createElement("tr");
      tr.dataset.sale = sku; tr.dataset.state = s.state;
      if (st) { tr.dataset.available = st.available; tr.dataset.sold = st.sold; }
      const ends = s.state !== "open" ? "closed" : !s.ends_at ? "–" : now < s.ends_at ? hms(s.ends_at) : "ended";
      for (const text of [sku, s.state, money(s.price_cents), st ? `${st.available} / ${st.total}` : "–", ends]) {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      }
      return tr;
    }));
  }

  function renderLog() {
    $("hc-log").replaceChildren(...hc.actions.slice(-8).reverse().map((e) => {
      const li = document.createElement("li");
      li.dataset.status = e.status; li.dataset.verb = e.verb; li.dataset.sku = e.sku || "";
      const label = { sent: "sent", acked: "in Kafka", applied: "applied", refused: "refused" }[e.status] || e.status;
      li.textContent = `${VERBS[e.verb] || e.verb} ${e.sku || ""} · ${label}${e.detail ? " · " + e.detail : ""}`;
      return li;
    }));
  }

  // Unanswered actions go again with the same key: the gateway answers a retry without producing it twice.
  setInterval(() => {
    for (const e of hc.actions) if (e.status === "sent" && e.frame && Date.now() - e.sentAt > RESEND_AFTER_MS) transmit(e);
    renderSales();
  }, 1000);

  window.addEventListener("lc:message", (ev) => handle(ev.detail));
  for (const verb of ["pin", "unpin", "open", "close", "restock"]) {
    $("hc-" + verb).addEventListener("click", () => ask({ open: "open_sale", close: "close_sale" }[verb] || verb));
  }
  $("hc-confirm-yes").addEventListener("click", confirmYes);
  $("hc-confirm-no").addEventListener("click", () => { hc.confirming = null; $("hc-confirm").hidden = true; });
})();
