/* Vigie live page: catastrophe mode (position: pan / tilt / zoom, shown for the demo's synthetic dome). Every viewer sees whether a catastrophe is declared and who
   steers the open camera ("commandée par Cdt Moreau"); a viewer whose role may steer takes the
   camera, turns it by keeping a finger on the pad (a move every 250 ms while held, a stop on
   release), zooms, goes to a preset or back home, and releases it. The server decides everything:
   this only shows its answers (GET /live/api/ptz, POST /live/api/ptz/{camera}/{action}).
   app.js tells it which camera is open (VigiePtz.camera) and when access ends (VigiePtz.end). */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var TICK_MS = 250;
  var state = null; // the server's view: {catastrophe, ends_at, may_control, cameras: {id: {holder, mine, presets}}}
  var current = null; // the camera open in the player
  var finished = false;
  var pollTimer = null;
  var moveTimer = null;
  var vector = null; // {pan, tilt, zoom} while a finger is held
  var $ = function (id) { return document.getElementById(id); };

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  function say(text) { var e = $("ptz-error"); if (e) { e.textContent = text || ""; } }

  function show(el, visible) { if (el) { el.hidden = !visible; } }

  function render() {
    var banner = $("catastrophe");
    var on = !!(state && state.catastrophe && !finished);
    if (banner) {
      var until = on && state.ends_at ? new Date(state.ends_at) : null;
      banner.textContent = on ? "CATASTROPHE DÉCLARÉE — commande des caméras mobiles ouverte" +
        (until ? " jusqu'à " + pad2(until.getHours()) + ":" + pad2(until.getMinutes()) : "") : "";
      show(banner, on);
    }
    var cam = on && current && state.cameras ? state.cameras[current] : null;
    show($("ptz"), !!cam);
    if (!cam) { stopMove(false); return; }
    var where = cam.position ? " · position " + cam.position.join(" / ") : "";
    $("ptz-holder").textContent = (cam.holder ? "Commandée par " + cam.holder : "Personne ne commande cette caméra.") + where;
    show($("ptz-controls"), !!state.may_control);
    show($("ptz-take"), !cam.holder);
    show($("ptz-takeover"), !!cam.holder && !cam.mine);
    show($("ptz-release"), !!cam.mine);
    show($("ptz-steer"), !!cam.mine);
    if (!cam.mine) { stopMove(false); }
    var box = $("ptz-presets");
    var wanted = (cam.presets || []).map(function (p) { return p.token; }).join("|");
    if (box.getAttribute("data-tokens") !== wanted) {
      box.textContent = "";
      (cam.presets || []).forEach(function (p) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "ptz-btn";
        b.textContent = p.name;
        b.setAttribute("data-token", p.token);
        box.appendChild(b);
      });
      box.setAttribute("data-tokens", wanted);
    }
  }

  function post(action, body) {
    if (!current || finished) { return Promise.resolve(false); }
    var camera = current;
    return fetch("/live/api/ptz/" + encodeURIComponent(camera) + "/" + action, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (r.ok) { state = j; say(""); } else { if (j.view) { state = j.view; } say(j.error || "Refusé."); }
        render();
        return r.ok;
      });
    }).catch(function () { say("Connexion perdue…"); return false; });
  }

  function poll() {
    clearTimeout(pollTimer);
    if (finished) { return; }
    fetch("/live/api/ptz", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) { if (v) { state = v; render(); } })
      .catch(function () { /* the page's own poll reports network trouble */ })
      .then(function () { if (!finished) { pollTimer = setTimeout(poll, POLL_MS); } });
  }

  // --- steering: a move while a finger is held, a stop when it lifts ---

  function sendMove() {
    if (vector) { post("move", vector); }
  }

  function startMove(v) {
    var first = vector === null;
    vector = v;
    if (first) { sendMove(); clearInterval(moveTimer); moveTimer = setInterval(sendMove, TICK_MS); }
  }

  function stopMove(send) {
    if (vector === null) { return; }
    vector = null;
    clearInterval(moveTimer);
    $("ptz-pad").classList.remove("on");
    if (send !== false) { post("stop"); }
  }

  function padVector(event) {
    var r = $("ptz-pad").getBoundingClientRect();
    var x = (event.clientX - r.left) / r.width * 2 - 1;
    var y = 1 - (event.clientY - r.top) / r.height * 2;
    var clamp = function (v) { return Math.max(-1, Math.min(1, Math.round(v * 100) / 100)); };
    return { pan: clamp(x), tilt: clamp(y), zoom: 0 };
  }

  function bindPad() {
    var el = $("ptz-pad");
    el.addEventListener("pointerdown", function (e) {
      e.preventDefault();
      if (el.setPointerCapture) { try { el.setPointerCapture(e.pointerId); } catch (err) { /* synthetic events */ } }
      el.classList.add("on");
      startMove(padVector(e));
    });
    el.addEventListener("pointermove", function (e) { if (vector) { vector = padVector(e); } });
    ["pointerup", "pointercancel", "lostpointercapture"].forEach(function (t) {
      el.addEventListener(t, function () { stopMove(); });
    });
  }

  function bindHold(id, zoom) {
    var el = $(id);
    el.addEventListener("pointerdown", function (e) { e.preventDefault(); startMove({ pan: 0, tilt: 0, zoom: zoom }); });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (t) {
      el.addEventListener(t, function () { stopMove(); });
    });
  }

  function init() {
    if (!$("ptz")) { return; }
    $("ptz-take").addEventListener("click", function () { post("take"); });
    $("ptz-takeover").addEventListener("click", function () { post("takeover"); });
    $("ptz-release").addEventListener("click", function () { stopMove(false); post("release"); });
    $("ptz-home").addEventListener("click", function () { post("home"); });
    $("ptz-presets").addEventListener("click", function (e) {
      var b = e.target.closest ? e.target.closest("[data-token]") : null;
      if (b) { post("preset", { token: b.getAttribute("data-token") }); }
    });
    bindPad();
    bindHold("ptz-zoom-in", 0.5);
    bindHold("ptz-zoom-out", -0.5);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { stopMove(); }
    });
    poll();
  }

  window.VigiePtz = {
    camera: function (id) { stopMove(); current = id; say(""); render(); },
    end: function () { stopMove(false); finished = true; clearTimeout(pollTimer); render(); }
  };
  if (document.body.classList.contains("view")) { init(); }
})();
