// The workbench pages: show a refused relabel (400 with the reason) instead of dropping it, and say
// whether the run page's live progress is connected. No inline scripts (the CSP forbids them).
"use strict";
(() => {
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr.status === 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  const liveState = (state, text) => {
    const el = document.getElementById("live-state");
    if (el) { el.dataset.state = state; el.textContent = text; }
  };
  document.addEventListener("htmx:wsOpen", () => liveState("open", "● live"));
  document.addEventListener("htmx:wsClose", () => liveState("closed", "○ reconnecting…"));
})();
