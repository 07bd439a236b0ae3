// Meja Aduan: keeps "time left" current, asks before resolving, and reloads a complaint
// page a few times after an action until route's confirmation shows up. Plain JS, no build.
(function () {
  "use strict";
  function left(seconds) {
    var late = seconds < 0;
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    var text = days ? days + " hari " + hours + " jam" : hours ? hours + " jam " + mins + " menit" : mins + " menit";
    return late ? "terlambat " + text : text + " lagi";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var seconds = (Date.parse(el.getAttribute("data-due")) - now) / 1000;
      el.textContent = left(seconds);
      var row = el.closest("tr");
      if (row && seconds < 0) row.classList.add("overdue");
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    setInterval(tick, 30000);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
    var pending = document.querySelector("[data-pending]");
    if (pending) {  // reload a few times so route's confirmation shows up in the history
      var url = new URL(location.href);
      var n = Number(url.searchParams.get("n") || "0");
      if (n < 5) {
        setTimeout(function () { url.searchParams.set("n", String(n + 1)); location.replace(url.href); }, 1500);
      }
    }
  });
})();
