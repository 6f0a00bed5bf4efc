// publisher console: refresh the parts of a page marked data-live from their fragment URL.
// Pages work without this file; it only saves reloading.
(function () {
  "use strict";
  var PERIOD = 3000;
  function follow(el) {
    var url = el.getAttribute("data-live");
    var last = null;
    function tick() {
      if (el.getAttribute("data-until") === "done") { return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.status === 401 || r.redirected) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== last) {
            last = html;
            el.innerHTML = html;
            if (el.querySelector("[data-finished]")) { el.setAttribute("data-until", "done"); }
          }
        })
        .catch(function () { /* the next tick tries again */ })
        .then(function () { window.setTimeout(tick, PERIOD); });
    }
    window.setTimeout(tick, PERIOD);
  }
  document.querySelectorAll("[data-live]").forEach(follow);
}());
