// The reports of the room's ended streams, listed on the dashboard (host and ops tokens only).
// The sink writes them when a stream ends; the gateway serves /reports/<room>/ (a JSON list) and
// /reports/<room>/<stream_id>.html, with the page's own ?token= (a viewer or another room gets 403,
// and the section stays hidden).  Looks again every minute: a report appears once a stream has
// been quiet for LC_STREAM_GAP_S.
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  const section = document.getElementById("reports");
  const list = document.getElementById("reports-list");
  if (!section || !list) return;
  const withToken = (path) => {
    const token = params.get("token");
    return token ? `${path}?token=${encodeURIComponent(token)}` : path;
  };
  const roomOf = () => params.get("room") || (window.__lc && window.__lc.room);
  async function refresh() {
    const room = roomOf();
    if (!room) { setTimeout(refresh, 1000); return; }  // the first snapshot names the token's room
    try {
      const resp = await fetch(withToken(`/reports/${encodeURIComponent(room)}/`));
      if (resp.ok) {
        const body = await resp.json();
        section.hidden = false;
        window.__lc && (window.__lc.reports = body.reports);
        if (!body.reports.length) {
          list.replaceChildren(Object.assign(document.createElement("li"),
            { className: "empty", textContent: "none yet: written when a stream ends" }));
        } else {
          list.replaceChildren(...body.reports.slice(0, 10).map(r => {
            const li = document.createElement("li"), a = document.createElement("a");
            a.href = withToken(r.path); a.target = "_blank"; a.rel = "noopener";
            a.textContent = `stream ${r.stream_id}`;
            li.append(a); return li;
          }));
        }
      } else if (resp.status === 401 || resp.status === 403) {
        section.hidden = true; return;  // not for this token: stop asking
      }
    } catch (e) { console.warn("reports list failed", e); }
    setTimeout(refresh, 60000);
  }
  refresh();
})();
