// The console's one script (vendored, no framework): ticks each countdown down while business time runs. The page is
// correct without it: the server computed every remaining time with the ticket's business calendar at data-as-of.
// Business time runs only until data-ticks-until (the end of the current opening hours); no attribute: it stands still.
"use strict";
(function () {
  const SHOWN_AT = Date.now();
  function text(seconds) {
    const sign = seconds < 0 ? "overdue " : "";
    let s = Math.abs(Math.trunc(seconds));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    const pad = (n) => String(n).padStart(2, "0");
    if (d) return `${sign}${d}d ${h}h ${pad(m)}m`;
    if (h) return `${sign}${h}h ${pad(m)}m`;
    return `${sign}${m}m ${pad(s)}s`;
  }
  function tick() {
    for (const el of document.querySelectorAll(".countdown[data-ticks-until]")) {
      const asOf = Date.parse(el.dataset.asOf);
      const until = Date.parse(el.dataset.ticksUntil);
      // the page was computed at as_of; the browser's clock only measures how long it has been shown
      const now = asOf + (Date.now() - SHOWN_AT);
      const left = Number(el.dataset.remaining) - (Math.min(now, until) - asOf) / 1000;
      el.textContent = text(left);
      el.classList.toggle("overdue", left < 0);
    }
  }
  document.addEventListener("DOMContentLoaded", () => { tick(); setInterval(tick, 1000); });
})();
