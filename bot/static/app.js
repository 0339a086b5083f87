/* Vigie live page: countdown, watermark clock, state polling, "Accès terminé".
   Loaded with defer from /live/static (the CSP allows no inline script). */
(function () {
  "use strict";

  var POLL_MS = 5000;
  var body = document.body;

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatRemaining(s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h > 0 ? h + ":" + pad(m) : String(m)) + ":" + pad(sec);
  }

  function initLogin() {
    var form = document.querySelector(".login-form");
    if (!form) { return; }
    form.addEventListener("submit", function () {
      var button = form.querySelector("button");
      if (button) { button.disabled = true; button.textContent = "Vérification…"; }
    });
  }

  function initView() {
    var remainingEl = document.getElementById("remaining");
    var netEl = document.getElementById("net");
    var wm = document.getElementById("watermark");
    var ended = document.getElementById("ended");
    var grid = document.getElementById("grid");
    var mosaic = document.getElementById("mosaic");
    var viewer = body.getAttribute("data-viewer") || "";
    var stateUrl = body.getAttribute("data-state-url") || "/live/api/state";
    // A monotonic deadline: the phone's wall clock may be wrong, the server's remaining_s is not.
    var deadline = performance.now() + 1000 * Number(body.getAttribute("data-remaining") || 0);
    var finished = false;
    var pollTimer = null;
    var tickTimer = null;

    function fillWatermark() {
      var now = new Date();
      var text = viewer + " · " + pad(now.getHours()) + ":" + pad(now.getMinutes()) + ":" + pad(now.getSeconds());
      var spans = wm.querySelectorAll(".wm");
      if (spans.length < 40) {
        wm.textContent = "";
        for (var i = 0; i < 40; i++) {
          var s = document.createElement("span");
          s.className = "wm";
          wm.appendChild(s);
        }
        spans = wm.querySelectorAll(".wm");
      }
      for (var j = 0; j < spans.length; j++) { spans[j].textContent = text; }
    }

    function end() {
      if (finished) { return; }
      finished = true;
      clearInterval(tickTimer);
      clearTimeout(pollTimer);
      // Drop every image and video element so nothing of the venue stays on screen.
      grid.textContent = "";
      if (mosaic) { mosaic.textContent = ""; }
      ended.hidden = false;
      document.title = "Accès terminé";
    }

    function tick() {
      var left = (deadline - performance.now()) / 1000;
      remainingEl.textContent = formatRemaining(left);
      remainingEl.classList.toggle("soon", left < 300);
      fillWatermark();
      if (left <= 0) { poll(); }
    }

    function schedule() {
      clearTimeout(pollTimer);
      if (!finished) { pollTimer = setTimeout(poll, POLL_MS); }
    }

    function poll() {
      if (finished) { return; }
      fetch(stateUrl, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
        .then(function (r) {
          if (r.status === 410 || r.status === 401 || r.status === 403) { end(); return null; }
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.json();
        })
        .then(function (state) {
          if (!state) { return; }
          netEl.hidden = true;
          if (!state.active) { end(); return; }
          deadline = performance.now() + 1000 * Number(state.remaining_s || 0);
          schedule();
        })
        .catch(function () {
          // Network trouble on 4G: say so, keep the countdown, try again.
          netEl.hidden = false;
          schedule();
        });
    }

    tick();
    tickTimer = setInterval(tick, 1000);
    schedule();
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { poll(); }
    });
  }

  if (body.classList.contains("view")) { initView(); } else { initLogin(); }
})();
