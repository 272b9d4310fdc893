// Small behaviours the pages share. No inline scripts (the CSP forbids them).
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset && form.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
