/* Vigie live player: one camera over a WebSocket, played with Media Source Extensions.
   The server sends a JSON text message with the quality served, a text message with the MIME
   type, then binary messages: the fMP4 init segment, then fragments (moof+mdat, one per frame;
   a message carries those that were ready together).
   "image/jpeg" instead means a camera with privacy masks: masked stills, one per second.

   Quality: "hd" (the camera's main stream) or "saver", économie de données (its substream, or
   its keyframes only). The officer forces one with the quality button, or leaves it on Auto:
   the player starts from what the Network Information API says of the link (where the
   browser has it), then moves down to "saver" when video arrives slower than real time or
   playback stalls; the server also moves a viewer down when its socket backs up, and says so
   in a JSON message. Auto never climbs back to HD by itself: on a congested cell that would
   flap; the officer can. A change asked by the page opens a new WebSocket (what the old one
   has in flight is dropped with it); one made by the server comes on the same socket. Each
   change of stream starts a new media source (the substream has its own timeline).
   Loaded before app.js, which creates the player with window.VigiePlayer(options). */
(function () {
  "use strict";

  // iPhone Safari 17.1+ only has ManagedMediaSource; everything else has MediaSource.
  var MS = window.ManagedMediaSource || window.MediaSource || null;
  var NO_MSE = "Ce navigateur ne peut pas lire la vidéo en direct (Media Source Extensions absentes). " +
    "Utilisez un navigateur récent : Chrome, Edge, Firefox, ou Safari 17.1 ou plus récent sur iPhone.";
  // Keeping up with the newest frame. Each fragment is one frame (40 ms at 25 fps) and the
  // buffer ahead of the playhead is all the lag the page adds (bench_live measures the whole
  // chain, frames identified by their timestamps: ~60 ms median on the farm). Chromium plays
  // on with one frame ahead; with none it stalls, so the target keeps ~2 frames in hand.
  var TARGET_LAG_S = 0.08;  // what the player steers to on a steady link
  // A link that delivers in bursts (a congested 4G cell, a throttled one: a 320x180 keyframe
  // takes ~0.2 s at 1 Mbit/s) empties a 2-frame buffer now and then. Each stall adds a frame
  // and a half of cushion (up to CUSHION_MAX_S in all), so the next burst finds frames in hand;
  // the cushion wears off by CUSHION_DECAY of a second each second of smooth play, back to
  // the 80 ms target on a link that has settled. One stall costs ~60 ms of extra lag for a
  // few seconds, never another stall of the same size.
  var CUSHION_STEP_S = 0.06, CUSHION_MAX_S = 0.4, CUSHION_DECAY = 0.01;
  var LIVE_JUMP_S = 0.5;    // further behind the target than this (a tab back from the
                            // background, a burst after a 4G hiccup): jump, a catch-up would
                            // take seconds at RATE_MAX
  var START_JUMP_S = 0.25;  // the first frames come from the cached GOP, up to 2 s old: jump at once
  // Catch-up: the rate grows with the lag (1.0 at the target, 1.25 at 0.25 s behind), so a
  // few frames of lag are absorbed over a second without a visible jump, and the rate eases
  // back to 1 as the lag falls: no oscillation, no stutter (a proportional controller: at
  // 0.1 s too many it plays 1.15x and gains 0.15 s per second, so the error halves in ~0.5 s).
  var RATE_GAIN = 1.5, RATE_MAX = 1.25;
  // Too close to the edge, a late fragment would stall the picture: ease off a little.
  var STARVING_S = 0.03, RATE_SLOW = 0.96;
  var KEEP_S = 10;         // seconds of video kept behind the playhead
  var ACCESS_ENDED = 4001; // close code sent by the server when access ends
  // Auto quality: over a 2 s window, less than 80 % of real time received means the link
  // cannot carry the stream; a stall longer than 0.6 s means the same, seen from the screen.
  var RATE_WINDOW_MS = 2000, RATE_MIN = 0.8, STALL_MS = 600;
  var QUALITY_LABELS = { auto: "Auto", hd: "HD", saver: "Éco" };
  var NEXT_CHOICE = { auto: "hd", hd: "saver", saver: "auto" };

  // Auto's first guess: data saving when the browser knows the link is slow or the user asked.
  function guessQuality() {
    var c = navigator.connection;
    if (!c) { return "hd"; }
    if (c.saveData || (c.effectiveType && c.effectiveType !== "4g") || (c.downlink && c.downlink < 2)) {
      return "saver";
    }
    return "hd";
  }

  function Player(opts) {
    var el = document.getElementById("player");
    var video = document.getElementById("player-video");
    var still = document.getElementById("player-still");
    var status = document.getElementById("player-status");
    var note = document.getElementById("player-note");
    var title = document.getElementById("player-title");
    var qualityButton = document.getElementById("player-quality");
    var choice = "auto", quality = "hd", resetPending = false;
    var windowStart = 0, windowMedia = null, stallTimer = null;
    var ws = null, ms = null, sb = null, mime = null, objectUrl = null, stillUrl = null;
    var queue = [];
    var fallback = null, hls = null;
    var t0 = 0, shown = false, caughtUp = false, closed = true, current = null, retries = 0, retryTimer = null;
    var cushion = 0, lastSteer = 0;

    function setStatus(text) {
      status.textContent = text || "";
      status.hidden = !text;
    }

    function firstFrame() {
      if (shown) { return; }
      shown = true;
      el.setAttribute("data-first-frame-ms", String(Math.round(performance.now() - t0)));
      el.setAttribute("data-state", "playing");
      setStatus("");
      retries = 0;
    }

    function watchFirstFrame() {
      if (video.requestVideoFrameCallback) {
        video.requestVideoFrameCallback(function () { firstFrame(); });
      } else {
        video.addEventListener("playing", firstFrame, { once: true });
      }
    }

    function release() {
      if (ws) { ws.onmessage = ws.onclose = null; try { ws.close(1000); } catch (e) { /* already closed */ } }
      ws = null;
      if (hls) { hls.stop(); hls = null; }
      clearTimeout(retryTimer);
      resetPending = false;
      resetMedia();
    }

    function resetMedia() {
      clearTimeout(stallTimer);
      video.pause();
      video.removeAttribute("src");
      video.load();
      video.playbackRate = 1;
      if (objectUrl) { URL.revokeObjectURL(objectUrl); objectUrl = null; }
      if (stillUrl) { URL.revokeObjectURL(stillUrl); stillUrl = null; }
      still.removeAttribute("src");
      ms = sb = mime = null;
      queue = [];
      caughtUp = false;
      windowMedia = null;
      cushion = 0;
      lastSteer = 0;
    }

    function open(camera) {
      release();
      current = camera;
      closed = false;
      shown = false;
      caughtUp = false;
      el.hidden = false;
      el.setAttribute("data-camera", camera.id);
      el.removeAttribute("data-first-frame-ms");
      el.removeAttribute("data-stalls");
      el.setAttribute("data-state", "connecting");
      title.textContent = camera.name;
      quality = choice === "auto" ? guessQuality() : choice;
      qualityButton.hidden = !!camera.masked;
      showChoice();
      note.hidden = !camera.masked;
      note.textContent = camera.masked ? "Zones masquées : image masquée, rafraîchie chaque seconde (pas de vidéo)." : "";
      video.hidden = !!camera.masked;
      still.hidden = !camera.masked;
      // no MSE: native HLS or live pictures (fallback.js)
      fallback = !camera.masked && !MS && window.VigieFallback ? window.VigieFallback.kind(video) : null;
      if (!camera.masked && !MS && !fallback) {
        el.setAttribute("data-state", "unsupported");
        setStatus(NO_MSE);
        return;
      }
      el.setAttribute("data-fallback", fallback || "none");
      qualityButton.hidden = qualityButton.hidden || !!fallback;
      video.hidden = !!camera.masked || fallback === "pictures";
      still.hidden = !video.hidden;
      setStatus("Connexion…");
      t0 = performance.now();
      if (fallback === "hls") {
        hls = window.VigieFallback.hls(video, camera.id, quality, { shown: firstFrame, failed: function (text) {
          el.setAttribute("data-state", "error"); setStatus(text);
        }, ended: function () { onClose({ code: ACCESS_ENDED }); } });
        return;
      }
      connect();
    }

    function connect() {
      var proto = location.protocol === "https:" ? "wss:" : "ws:";
      if (choice !== "auto") { quality = choice; }
      ws = new WebSocket(proto + "//" + location.host + "/live/api/cam/" + encodeURIComponent(current.id) +
        "/ws?quality=" + quality + (fallback === "pictures" ? "&mode=pictures" : ""));
      ws.binaryType = "arraybuffer";
      el.setAttribute("data-ws", "connecting");
      ws.onopen = function () { el.setAttribute("data-ws", "open"); };
      ws.onmessage = onMessage;
      ws.onclose = onClose;
    }

    function onMessage(event) {
      if (typeof event.data === "string") {
        if (event.data.charAt(0) === "{") { onQuality(JSON.parse(event.data)); } else { onMime(event.data); }
        return;
      }
      if (mime === "image/jpeg") { showStill(event.data); return; }
      queue.push(event.data);
      pump();
    }

    function onQuality(served) {
      // what the server sends from now on; a new stream follows, on its own timeline
      if (mime) { resetPending = true; }
      quality = served.quality;
      el.setAttribute("data-quality", served.quality);
      el.setAttribute("data-keyframes-only", served.keyframes_only ? "true" : "false");
      el.setAttribute("data-quality-reason", served.reason);
      showChoice();
    }

    function ask(wanted) {
      // A new connection rather than a switch on this one: what the old one still has in
      // flight (socket buffers, a congested cell's queues: seconds of HD) is dropped with it.
      if (wanted === quality || closed || !current || fallback) { return; }
      quality = wanted;
      release();
      connect();
    }

    function showChoice() {
      qualityButton.setAttribute("data-choice", choice);
      qualityButton.textContent = choice === "auto" ? "Auto · " + QUALITY_LABELS[quality] : QUALITY_LABELS[choice];
    }

    function slowLink(why) {
      el.setAttribute("data-slow", why);
      if (choice === "auto" && quality === "hd") { ask("saver"); }
    }

    function measureArrival(end) {
      // media seconds received against wall-clock seconds: below RATE_MIN, the link is too slow
      var now = performance.now();
      if (windowMedia === null) { windowStart = now; windowMedia = end; return; }
      if (now - windowStart < RATE_WINDOW_MS) { return; }
      var rate = (end - windowMedia) * 1000 / (now - windowStart);
      el.setAttribute("data-arrival-rate", rate.toFixed(2));
      if (rate < RATE_MIN && caughtUp) { slowLink("arrival"); }
      windowStart = now;
      windowMedia = end;
    }

    video.addEventListener("waiting", function () {
      clearTimeout(stallTimer);
      if (!shown) { return; }
      if (video.seeking) { return; } // our own jump to the live edge, not a dry buffer
      // the buffer ran dry: keep more in hand from now on (see CUSHION_STEP_S)
      cushion = Math.min(CUSHION_MAX_S - TARGET_LAG_S, cushion + CUSHION_STEP_S);
      el.setAttribute("data-stalls", String(Number(el.getAttribute("data-stalls") || 0) + 1));
      stallTimer = setTimeout(function () { slowLink("stall"); }, STALL_MS);
    });
    video.addEventListener("playing", function () { clearTimeout(stallTimer); });

    qualityButton.addEventListener("click", function () {
      choice = NEXT_CHOICE[choice];
      showChoice();
      ask(choice === "auto" ? guessQuality() : choice);
    });

    function onMime(type) {
      if (type === "image/jpeg") { mime = type; return; }
      if (resetPending) { resetPending = false; resetMedia(); }
      if (!MS) { setStatus(NO_MSE); ws.close(1000); return; }
      if (!MS.isTypeSupported(type) && window.VigieFallback && fallback !== "pictures") {
        // MSE without this codec (a build without H.264): live pictures instead
        fallback = "pictures";
        el.setAttribute("data-fallback", fallback);
        video.hidden = true;
        still.hidden = false;
        release();
        connect();
        return;
      }
      if (!MS.isTypeSupported(type)) {
        el.setAttribute("data-state", "unsupported");
        setStatus("Ce navigateur ne sait pas décoder la vidéo de cette caméra (" + type + ").");
        ws.close(1000);
        return;
      }
      if (sb && type === mime) { return; } // a new init segment, same codec: appended as is
      if (sb && sb.changeType) { mime = type; sb.changeType(type); return; }
      mime = type;
      ms = new MS();
      if (window.ManagedMediaSource && ms instanceof window.ManagedMediaSource) {
        video.disableRemotePlayback = true; // required by Safari for a ManagedMediaSource
      }
      objectUrl = URL.createObjectURL(ms);
      video.src = objectUrl;
      ms.addEventListener("sourceopen", function () {
        if (!ms || ms.readyState !== "open") { return; }
        sb = ms.addSourceBuffer(mime);
        sb.mode = "segments"; // the fragments carry the camera's own timestamps
        sb.addEventListener("updateend", onUpdated);
        watchFirstFrame();
        pump();
      });
    }

    function pump() {
      if (!sb || sb.updating || !queue.length || !ms || ms.readyState !== "open") { return; }
      var total = 0, i;
      for (i = 0; i < queue.length; i++) { total += queue[i].byteLength; }
      var data = new Uint8Array(total), at = 0;
      for (i = 0; i < queue.length; i++) { data.set(new Uint8Array(queue[i]), at); at += queue[i].byteLength; }
      queue = [];
      try {
        sb.appendBuffer(data);
      } catch (err) {
        // QuotaExceeded: the phone is short of memory; drop what is behind and carry on
        trim(true);
      }
    }

    function keepLive(end) {
      // A viewer starts on the cached keyframe, up to a GOP behind the camera: once that first
      // frame is up, go to the newest frame; then stay within ~100 ms of it without jumps.
      var now = performance.now();
      if (lastSteer) { cushion = Math.max(0, cushion - CUSHION_DECAY * (now - lastSteer) / 1000); }
      lastSteer = now;
      var target = TARGET_LAG_S + cushion;
      var lag = end - video.currentTime;
      el.setAttribute("data-lag-ms", String(Math.round(lag * 1000)));
      el.setAttribute("data-target-ms", String(Math.round(target * 1000)));
      if (lag > target + LIVE_JUMP_S || (!caughtUp && lag > START_JUMP_S)) {
        video.currentTime = end - target;
        video.playbackRate = 1;
      } else if (lag > target) {
        video.playbackRate = Math.min(RATE_MAX, 1 + RATE_GAIN * (lag - target));
      } else if (lag < STARVING_S) {
        video.playbackRate = RATE_SLOW;
      } else if (video.playbackRate !== 1) {
        video.playbackRate = 1;
      }
      caughtUp = true;
    }

    function inBuffered(t) {
      var b = video.buffered;
      for (var i = 0; i < b.length; i++) { if (t >= b.start(i) && t <= b.end(i)) { return true; } }
      return false;
    }

    function trim(force) {
      var b = video.buffered;
      if (!sb || sb.updating || !b.length) { return false; }
      var upto = video.currentTime - KEEP_S;
      if ((force || upto - b.start(0) > KEEP_S) && upto > b.start(0)) {
        sb.remove(b.start(0), upto);
        return true;
      }
      return false;
    }

    function onUpdated() {
      var b = video.buffered;
      if (b.length) {
        var end = b.end(b.length - 1);
        if (video.currentTime < b.start(0) || !inBuffered(video.currentTime)) {
          // first append (timestamps start at the camera's clock, not 0), or a gap left by a
          // slow link that the server resumed at a later keyframe: go to the newest data
          video.currentTime = video.readyState ? Math.max(b.start(b.length - 1), end - TARGET_LAG_S) : b.start(0);
        } else if (shown) {
          keepLive(end);
        }
        measureArrival(end);
        if (video.paused) {
          var p = video.play();
          if (p && p.catch) { p.catch(function () { /* retried on the next append */ }); }
        }
      }
      if (!trim(false)) { pump(); }
    }

    function showStill(data) {
      var url = URL.createObjectURL(new Blob([data], { type: "image/jpeg" }));
      var old = stillUrl;
      stillUrl = url;
      still.onload = function () {
        if (old) { URL.revokeObjectURL(old); }
        firstFrame();
      };
      still.src = url;
    }

    function onClose(event) {
      el.setAttribute("data-ws", "closed");
      el.setAttribute("data-close-code", String(event.code));
      ws = null;
      if (closed) { return; }
      if (event.code === ACCESS_ENDED) {
        el.setAttribute("data-state", "ended");
        release();
        setStatus("Accès terminé.");
        opts.onAccessEnded();
        return;
      }
      // the network dropped (4G) or the server restarted: try again a few times
      if (retries < 5) {
        retries += 1;
        setStatus("Flux interrompu — nouvelle tentative…");
        retryTimer = setTimeout(function () {
          if (!closed) { release(); t0 = performance.now(); shown = caughtUp = false; connect(); }
        }, 1000 * retries);
      } else {
        el.setAttribute("data-state", "error");
        setStatus("Flux interrompu. Fermez puis rouvrez la caméra.");
      }
    }

    function close() {
      closed = true;
      release();
      el.hidden = true;
      el.setAttribute("data-state", "closed");
      current = null;
    }

    document.getElementById("player-close").addEventListener("click", function () {
      close();
      opts.onClose();
    });

    return { open: open, close: close, isOpen: function () { return !closed; } };
  }

  window.VigiePlayer = Player;
})();
