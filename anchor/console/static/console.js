// The on-air page follows the channel live: server-sent state every second, and the preview
// picture fetched again once it has loaded. Nothing here writes markup: text goes in as text.
"use strict";
(function () {
  const page = document.getElementById("onair");
  const preview = document.getElementById("preview");
  if (preview) {
    const every = Number(preview.dataset.every || 1000);
    const again = () => setTimeout(() => { preview.src = "/preview.jpg?t=" + Date.now(); }, every);
    preview.addEventListener("load", again);
    preview.addEventListener("error", () => setTimeout(again, 2000));
  }
  // The questions page reloads itself every few seconds, unless the operator is writing or
  // has a form open: new questions and drafts appear without losing what is being typed.
  const refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    const every = Number(refresh.dataset.refresh) * 1000;
    let leaving = false;  // a form was sent: its answer is the next page, not a reload
    document.addEventListener("submit", () => { leaving = true; });
    const busy = () => {
      if (leaving) return true;
      const el = document.activeElement;
      const typing = el && (el.tagName === "TEXTAREA" || el.tagName === "INPUT") && el.value;
      return typing || document.querySelector("details[open]");
    };
    setInterval(() => { if (!busy()) window.location.reload(); }, every);
  }
  if (!page || !window.EventSource) return;
  const text = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };
  const span = (s) => { s = Math.floor(s); const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
    return h + ":" + String(m).padStart(2, "0") + ":" + String(x).padStart(2, "0"); };
  const list = (id, items, make) => {
    const el = document.getElementById(id); if (!el) return;
    el.replaceChildren(...items.map((item) => { const li = document.createElement("li"); make(li, item); return li; }));
  };
  const source = new EventSource(page.dataset.live);
  source.addEventListener("state", (event) => {
    const s = JSON.parse(event.data);
    text("line", s.line); text("segment", s.segment); text("schedule", s.schedule);
    text("uptime", span(s.uptime_s)); text("stream", span(s.stream_s));
    text("lateness", s.lateness_ms + " ms"); text("skipped", s.skipped); text("underruns", s.underruns);
    text("waiting", s.waiting);
    const health = document.getElementById("health");
    if (health) { health.textContent = s.health; health.className = "status " + s.health; }
    for (const [name, value] of Object.entries(s.checks)) {
      const el = document.getElementById("check-" + name);
      if (el) { el.textContent = value; el.className = "status " + value; }
    }
    document.getElementById("held").hidden = !s.held;
    document.getElementById("paused").hidden = !s.paused;
    list("next", s.next, (li, line) => { li.textContent = line; });
    list("recent", s.recent, (li, h) => {
      const t = document.createElement("time"); t.textContent = h.at;
      li.append(t, " " + h.kind + " " + h.text);
    });
  });
})();
