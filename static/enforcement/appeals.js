// The appeals queue: say whether its live updates are connected. No inline scripts (the CSP forbids them).
"use strict";
(() => {
  const liveState = (state, text) => {
    const el = document.getElementById("live-state");
    if (el) { el.dataset.state = state; el.textContent = text; }
  };
  document.addEventListener("htmx:wsOpen", () => liveState("open", "● live"));
  document.addEventListener("htmx:wsClose", () => liveState("closed", "○ reconnecting…"));
})();
