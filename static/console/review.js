// The review console in the browser: keyboard shortcuts, claim renewal, blur reveal, greyscale, and the
// small touches around htmx's live updates. Loaded with `defer` on the review pages; no inline script
// (the CSP forbids it) and no polling: the server pushes changes over the WebSocket.
"use strict";
(() => {
  const body = document.body;
  const store = {
    get(key) { try { return window.localStorage.getItem(key); } catch { return null; } },
    set(key, value) { try { window.localStorage.setItem(key, value); } catch { /* private mode: not kept */ } },
  };

  // Preferences live as classes on <body>, so they survive live swaps and carry across pages.
  const applyPrefs = () => {
    body.classList.toggle("greyscale", store.get("console.greyscale") === "1");
    body.classList.toggle("hide-reasoning", store.get("console.hideReasoning") === "1");
    document.querySelectorAll('[data-action="greyscale"]').forEach((button) => {
      button.setAttribute("aria-pressed", String(body.classList.contains("greyscale")));
    });
  };
  applyPrefs();

  const csrfToken = () => {
    try { return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; } catch { return ""; }
  };

  let toastTimer = 0;
  const toast = (text) => {
    const el = document.getElementById("live-toast") || Object.assign(document.createElement("div"), {
      id: "live-toast", className: "toast", role: "status",
    });
    if (!el.isConnected) body.appendChild(el);
    if (text) el.textContent = text;
    el.classList.add("show");
    window.clearTimeout(toastTimer);
    toastTimer = window.setTimeout(() => el.classList.remove("show"), 4000);
  };

  // --- panels (override, escalate, comment) and dialogs ---------------------------------------

  const openPanel = (id) => {
    document.querySelectorAll("form.panel").forEach((panel) => { if (panel.id !== id) panel.hidden = true; });
    const panel = document.getElementById(id);
    if (!panel) return;
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
    const first = panel.querySelector("select, input:not([type=hidden]), textarea");
    if (first) first.focus();
  };

  const closeAll = () => {
    let closed = false;
    document.querySelectorAll("form.panel:not([hidden])").forEach((panel) => { panel.hidden = true; closed = true; });
    const bulk = document.getElementById("bulk-dialog");
    if (bulk && bulk.children.length) { bulk.replaceChildren(); closed = true; }
    return closed;
  };

  const actions = {
    greyscale() {
      const on = !body.classList.contains("greyscale");
      store.set("console.greyscale", on ? "1" : "0");
      applyPrefs();
      toast(on ? "Greyscale on (g turns it off)" : "Greyscale off");
    },
    help() {
      const dialog = document.getElementById("keys-help");
      if (!dialog) return;
      if (dialog.open) dialog.close(); else dialog.showModal();
    },
    reveal() {
      const content = document.getElementById("content");
      if (content && content.classList.contains("blurred")) {
        content.classList.remove("blurred");
        content.classList.add("revealed");
      }
    },
    reasoning() {
      const hide = !body.classList.contains("hide-reasoning");
      store.set("console.hideReasoning", hide ? "1" : "0");
      applyPrefs();
      toast(hide ? "Reasoning hidden (r shows it)" : "Reasoning shown");
    },
  };

  // --- queue rows: j / k / Enter / x ----------------------------------------------------------

  const rows = () => Array.from(document.querySelectorAll("#queue tr.queue-row"));
  const focusedRow = () => document.querySelector("#queue tr.queue-row.focus");
  const focusRow = (step) => {
    const list = rows();
    if (!list.length) return;
    const at = list.indexOf(focusedRow());
    const next = at < 0 ? 0 : Math.max(0, Math.min(list.length - 1, at + step));
    list.forEach((row, index) => row.classList.toggle("focus", index === next));
    list[next].scrollIntoView({ block: "nearest" });
  };
  const selectionChanged = () => {
    const button = document.querySelector('#bulk-form [data-key="A"]');
    const n = document.querySelectorAll('#bulk-form input[name="ids"]:checked').length;
    if (button) button.firstChild.textContent = n ? `Approve ${n} selected… ` : "Approve selected… ";
  };

  // --- clicks -----------------------------------------------------------------------------------

  document.addEventListener("click", (event) => {
    const control = event.target.closest("[data-action], [data-panel], [data-close]");
    if (control && !control.disabled) {
      if (control.dataset.action && actions[control.dataset.action]) actions[control.dataset.action]();
      else if (control.dataset.panel) openPanel(control.dataset.panel);
      else if (control.hasAttribute("data-close")) { event.preventDefault(); closeAll(); }
      return;
    }
    if (event.target.closest("#content.blurred")) { actions.reveal(); return; }
    const row = event.target.closest("tr.queue-row");
    if (row && !event.target.closest("a, input, button, label")) window.location.assign(row.dataset.href);
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches('#bulk-form input[name="ids"]')) selectionChanged();
  });

  // --- keys ---------------------------------------------------------------------------------------

  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  const onQueue = () => Boolean(document.querySelector('[data-page="queue"]'));
  const onItem = () => Boolean(document.getElementById("item-page"));

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.key === "Escape") {
      if (document.querySelector("dialog[open]")) return; // the dialog closes itself
      if (closeAll()) { event.preventDefault(); if (target.blur) target.blur(); }
      return;
    }
    if (typing(target)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form) {
        event.preventDefault();
        target.form.requestSubmit();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || document.querySelector("dialog[open]")) return;
    const key = event.key;
    if (key === "Enter" && /^(BUTTON|A|SUMMARY)$/.test(target.tagName)) return; // the focused control acts
    if (onQueue()) {
      if (key === "j" || key === "ArrowDown") { event.preventDefault(); focusRow(1); return; }
      if (key === "k" || key === "ArrowUp") { event.preventDefault(); focusRow(-1); return; }
      const row = focusedRow();
      if (key === "Enter" && row) { event.preventDefault(); window.location.assign(row.dataset.href); return; }
      if (key === "x" && row) {
        event.preventDefault();
        const box = row.querySelector('input[name="ids"]');
        box.checked = !box.checked;
        selectionChanged();
        return;
      }
    }
    if (key === "r" && onItem()) { event.preventDefault(); actions.reasoning(); return; }
    const matches = document.querySelectorAll(`[data-key="${CSS.escape(key)}"]`);
    const control = matches[matches.length - 1]; // the most specific: page controls come after the nav
    if (!control) return;
    event.preventDefault();
    if (control.disabled || control.tagName === "SPAN") { toast(control.dataset.why || "Not available here"); return; }
    if (/^(INPUT|SELECT|TEXTAREA)$/.test(control.tagName)) { control.focus(); return; }
    control.click();
  });

  // --- the item's claim: renewed every minute while the page is open and visible ---------------

  // (A 400 means nothing here is the viewer's to decide, which the page already says; a 409 that
  // someone else took the item, which is news.)
  const page = document.getElementById("item-page");
  if (page && page.dataset.claimUrl) {
    const renew = () => {
      if (document.hidden) return;
      fetch(page.dataset.claimUrl, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } })
        .then((response) => (response.status === 409 ? response.json() : null))
        .then((refused) => { if (refused && refused.error) toast(refused.error); })
        .catch(() => { /* offline for a moment: the next renewal tries again */ });
    };
    window.setInterval(renew, 60000);
    document.addEventListener("visibilitychange", renew);
  }

  // --- how long items have waited, kept current without asking the server ----------------------

  const ago = (iso) => {
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 60) return "just now";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return `${hours} h ${minutes % 60} min`;
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  };
  const refreshAges = () => {
    document.querySelectorAll("td.age time[datetime]").forEach((el) => { el.textContent = ago(el.getAttribute("datetime")); });
  };
  refreshAges();
  window.setInterval(refreshAges, 30000);

  // --- htmx -----------------------------------------------------------------------------------------

  // A refused decision comes back as 400 / 403 / 409 with the reason: show it instead of dropping it.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    if (status === 400 || status === 403 || status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target.id === "feedback" && target.children.length) target.scrollIntoView({ block: "nearest" });
    const autofocus = target.querySelector && target.querySelector("[autofocus]");
    if (autofocus) autofocus.focus();
    refreshAges();
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail.elt;
    if (form.id === "comment-panel" && event.detail.successful && event.detail.xhr.status === 200) {
      form.reset();
      form.hidden = true;
      toast("Comment added");
    }
  });
  document.addEventListener("htmx:oobAfterSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "live-toast") {
      const el = document.getElementById("live-toast");
      if (el && el.textContent.trim()) toast();
    }
  });
  document.addEventListener("htmx:wsAfterMessage", refreshAges);
  const liveState = (state, text) => {
    const el = document.getElementById("live-state");
    if (el) { el.dataset.state = state; el.textContent = text; }
  };
  document.addEventListener("htmx:wsOpen", () => liveState("open", "● live"));
  document.addEventListener("htmx:wsClose", () => liveState("closed", "○ reconnecting…"));
})();
