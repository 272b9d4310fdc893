// Policy forms: the category codes field only matters for the categories scheme, so show it only then.
"use strict";
(() => {
  const scheme = document.querySelector("select[name=label_scheme]");
  const labels = document.querySelector(".labels-field");
  if (!scheme || !labels) return;
  const sync = () => { labels.hidden = scheme.value !== "categories"; };
  scheme.addEventListener("change", sync);
  sync();
})();
