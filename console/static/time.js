// Progressive enhancement of <time datetime> elements: the server prints
// UTC ("2026-12-04 19:43 UTC"); with this script the text becomes relative
// ("3 min ago") and the exact time in the viewer's zone shows on hover.
(function () {
  "use strict";
  function ago(ms) {
    var s = Math.round(ms / 1000);
    var future = s < 0;
    s = Math.abs(s);
    var text;
    if (s < 45) text = s + " s";
    else if (s < 45 * 60) text = Math.round(s / 60) + " min";
    else if (s < 36 * 3600) text = Math.round(s / 3600) + " h";
    else text = Math.round(s / 86400) + " days";
    return future ? "in " + text : text + " ago";
  }
  function enhance() {
    var now = Date.now();
    var nodes = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) continue;
      var exact;
      try {
        // "long" time includes the zone ("2:59:29 AM GMT+1").
        exact = new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "long" });
      } catch (e) {
        exact = new Date(t).toString();
      }
      if (el.hasAttribute("data-exact")) {
        el.textContent = exact;
      } else {
        el.textContent = ago(now - t);
        el.setAttribute("title", exact);
      }
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enhance);
  } else {
    enhance();
  }
})();
