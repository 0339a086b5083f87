/* Vigie live page: countdown, watermark clock, state polling, "Accès terminé", the live
   mosaic (a JPEG refreshed every 1-2 s) and the camera list that opens a camera live.
   Loaded with defer from /live/static after player.js (the CSP allows no inline script). */
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
    var overlay = document.getElementById("player-overlay");
    var mosaicImg = document.getElementById("mosaic-img");
    var hits = document.getElementById("mosaic-hits");
    var finished = false;
    var pollTimer = null;
    var tickTimer = null;
    var mosaicTimer = null;
    var mediaTimer = null;
    var mosaicUrl = null;
    var pendingCamera = null;  // tapped before /live/api/media answered
    var media = null; // layout and cameras from /live/api/media; null while unknown
    var order = ""; // the cameras' order of the current hits (the zone's first)
    var plan = document.getElementById("plan");
    var marks = document.getElementById("plan-marks");
    var focusLabel = document.getElementById("focus-label");
    var player = window.VigiePlayer ? window.VigiePlayer({
      onAccessEnded: function () { poll(); },
      onClose: function () { loadMedia(); refreshMosaic(); if (window.VigiePtz) { window.VigiePtz.camera(null); } }
    }) : null;

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
      if (overlay) { overlay.textContent = text; }
    }

    // --- the live mosaic and the cameras ---

    function cameraById(id) {
      if (!media) { return null; }
      for (var i = 0; i < media.cameras.length; i++) { if (media.cameras[i].id === id) { return media.cameras[i]; } }
      return null;
    }

    function openCamera(id) {
      // a tap before the camera list arrived (a slow 4G link) is kept and honoured when it does
      if (!media) { pendingCamera = id; return; }
      var cam = cameraById(id);
      if (!cam || !player || finished) { return; }
      player.open(cam);
      if (window.VigiePtz) { window.VigiePtz.camera(cam.id); }
    }

    function buildHits() {
      // transparent buttons laid over the mosaic's cells: tapping a picture opens that camera
      hits.textContent = "";
      hits.style.top = (100 * media.mosaic.top) + "%";
      hits.style.gridTemplateColumns = "repeat(" + media.mosaic.columns + ", 1fr)";
      hits.style.gridTemplateRows = "repeat(" + media.mosaic.rows + ", 1fr)";
      media.cameras.forEach(function (cam) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "hit";
        b.setAttribute("data-camera", cam.id);
        b.setAttribute("aria-label", cam.name);
        hits.appendChild(b);
      });
    }

    function markOne(el, cam) {
      el.classList.toggle("online", !!(cam && cam.online));
      el.classList.toggle("offline", !!(cam && !cam.online));
      el.classList.toggle("masked", !!(cam && cam.masked));
      el.classList.toggle("in-zone", !!(cam && cam.in_zone));
    }

    function markCameras() {
      // the list follows the mosaic's order: the focus zone's cameras first, marked
      media.cameras.forEach(function (cam) {
        var button = grid.querySelector('.cam[data-camera="' + cam.id + '"]');
        if (button) { grid.appendChild(button); }
      });
      var buttons = grid.querySelectorAll(".cam");
      for (var i = 0; i < buttons.length; i++) {
        var cam = cameraById(buttons[i].getAttribute("data-camera"));
        markOne(buttons[i], cam);
        var tag = buttons[i].querySelector(".cam-tag");
        if (tag) { tag.textContent = cam && cam.masked ? "masquée" : (cam && !cam.online ? "hors ligne" : ""); }
      }
      var spots = marks ? marks.querySelectorAll(".mark") : [];
      for (var j = 0; j < spots.length; j++) { markOne(spots[j], cameraById(spots[j].getAttribute("data-camera"))); }
      if (focusLabel && media.focus) { focusLabel.textContent = media.focus.label || ""; }
    }

    // --- the plan: the cameras where they stand, tap one to see it live ---

    function buildPlan(venue) {
      if (!venue.plan || !plan) { return; }
      var img = document.getElementById("plan-img");
      venue.plan.cameras.forEach(function (spot) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "mark";
        b.setAttribute("data-camera", spot.id);
        var cam = cameraById(spot.id);
        b.setAttribute("aria-label", cam ? cam.name : spot.id);
        b.title = cam ? cam.name : spot.id;
        b.style.left = (100 * spot.x) + "%";
        b.style.top = (100 * spot.y) + "%";
        if (spot.direction !== null && spot.direction !== undefined) {
          var cone = document.createElement("span");
          cone.className = "cone";
          cone.style.transform = "rotate(" + spot.direction + "deg)";
          b.appendChild(cone);
        }
        marks.appendChild(b);
      });
      img.src = venue.plan.url;
      plan.hidden = false;
      var link = document.getElementById("plan-link");
      if (link) { link.hidden = false; }
      markCameras();
    }

    function loadVenue() {
      fetch("/live/api/venue", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (v) { if (v && !finished) { buildPlan(v); } })
        .catch(function () { /* no plan: the list and the mosaic remain */ });
    }

    function loadMedia() {
      if (finished) { return; }
      // the camera list, the plan's marks and the mosaic's cells are under the full-screen player:
      // no request for them while a camera is open (officers are on 4G), fetched again on close
      if (media && player && player.isOpen()) { scheduleMedia(); return; }
      fetch("/live/api/media", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 410 || r.status === 401) { poll(); return null; }
          return r.ok ? r.json() : null;
        })
        .then(function (m) {
          if (!m || finished) { return; }
          var first = media === null;
          media = m;
          var now = m.cameras.map(function (c) { return c.id; }).join(",");
          if (now !== order) { order = now; buildHits(); }  // the focus zone changed: new mosaic layout
          if (first) {
            mosaic.hidden = false;
            if (pendingCamera) { openCamera(pendingCamera); pendingCamera = null; }
            refreshMosaic();
            loadVenue();
          }
          markCameras();
        })
        .catch(function () { /* the state poll reports network trouble */ })
        .then(scheduleMedia);
    }

    function scheduleMedia() {
      clearTimeout(mediaTimer);
      if (!finished) { mediaTimer = setTimeout(loadMedia, POLL_MS); }
    }

    function zoneKey() {
      return media.cameras.filter(function (c) { return c.in_zone; }).map(function (c) { return c.id; }).join(",");
    }

    function scheduleMosaic() {
      clearTimeout(mosaicTimer);
      if (!finished && media) { mosaicTimer = setTimeout(refreshMosaic, media.mosaic.refresh_ms || 1500); }
    }

    function refreshMosaic() {
      clearTimeout(mosaicTimer);
      // no download while a camera is open or the page is hidden: officers are on 4G
      if (finished || !media || (player && player.isOpen()) || document.visibilityState === "hidden") {
        scheduleMosaic();
        return;
      }
      fetch(media.mosaic.url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 410 || r.status === 401 || r.status === 403) { poll(); return null; }
          // the focus zone changed: this picture's cells are in a new order, fetch the new cell map now
          if (r.ok && media && (r.headers.get("X-Vigie-Zone") || "") !== zoneKey()) { clearTimeout(mediaTimer); loadMedia(); }
          return r.ok ? r.blob() : null;
        })
        .then(function (blob) {
          if (!blob || finished) { return; }
          var old = mosaicUrl;
          mosaicUrl = URL.createObjectURL(blob);
          mosaicImg.onload = function () {
            if (old) { URL.revokeObjectURL(old); }
            var count = Number(mosaic.getAttribute("data-refreshes") || 0) + 1;
            mosaic.setAttribute("data-refreshes", String(count));
            // time since the navigation started (the link, its redirect): what the bench reads
            if (count === 1) { mosaic.setAttribute("data-first-ms", String(Math.round(performance.now()))); }
          };
          mosaicImg.src = mosaicUrl;
        })
        .catch(function () { /* try again at the next period */ })
        .then(scheduleMosaic);
    }

    function end() {
      if (finished) { return; }
      finished = true;
      clearInterval(tickTimer);
      clearTimeout(pollTimer);
      clearTimeout(mosaicTimer);
      clearTimeout(mediaTimer);
      // Drop every image and video element so nothing of the venue stays on screen.
      if (player) { player.close(); }
      if (window.VigiePtz) { window.VigiePtz.end(); }
      if (mosaicUrl) { URL.revokeObjectURL(mosaicUrl); mosaicUrl = null; }
      grid.textContent = "";
      if (mosaic) { mosaic.textContent = ""; mosaic.hidden = true; }
      if (plan) { plan.textContent = ""; plan.hidden = true; }
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

    function onCameraTap(event) {
      var target = event.target.closest ? event.target.closest("[data-camera]") : null;
      if (target) { openCamera(target.getAttribute("data-camera")); }
    }

    tick();
    tickTimer = setInterval(tick, 1000);
    schedule();
    grid.addEventListener("click", onCameraTap);
    hits.addEventListener("click", onCameraTap);
    if (marks) { marks.addEventListener("click", onCameraTap); }
    loadMedia();
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { poll(); refreshMosaic(); }
    });
  }

  if (body.classList.contains("view")) { initView(); } else { initLogin(); }
})();
