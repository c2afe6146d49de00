// Progressive enhancement for the notionsync console; every page works
// without it. Served by the control plane itself (the CSP allows 'self'
// scripts only, no inline code).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Forms with data-confirm ask before they post.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (!window.confirm(f.getAttribute("data-confirm"))) ev.preventDefault();
    });
  });
  // Buttons with data-copy copy the value of the named input.
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    var input = document.getElementById(b.getAttribute("data-copy"));
    if (!input || !navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(input.value).then(function () {
        b.textContent = "Copied";
      }, function () {
        input.select();
        b.textContent = "Select and copy";
      });
    });
  });
});
