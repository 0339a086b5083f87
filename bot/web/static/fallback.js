/* Vigie live player's fallbacks, for browsers without Media Source Extensions.
   The page picks, in order: MSE / ManagedMediaSource over the WebSocket (player.js), native
   HLS (iPhone Safari before 17.1, in-app web views: video.canPlayType says so), then live
   pictures (the same WebSocket with ?mode=pictures: a JPEG every 0.25 s, the viewer's name
   burnt in, shown by player.js like a masked camera's stills).
   HLS comes from the server's memory (cookie-checked, no-store, cut at the end of access);
   the viewer's name is the same CSS overlay as over MSE video.
   Loaded before player.js, which calls window.VigieFallback. */
(function () {
  "use strict";

  var HLS_TYPES = ["application/vnd.apple.mpegurl", "application/x-mpegURL"];
  var READY_POLL_MS = 300;   // the first segment takes about a second to complete
  var READY_TRIES = 40;

  function kind(video) {
    if (window.ManagedMediaSource || window.MediaSource) { return "mse"; }
    for (var i = 0; i < HLS_TYPES.length; i++) {
      if (video.canPlayType && video.canPlayType(HLS_TYPES[i])) { return "hls"; }
    }
    return "pictures";
  }

  // Plays one camera's HLS playlist in the <video>. events: shown(), ended(), failed(text).
  function Hls(video, url, events) {
    var stopped = false, timer = null, tries = 0;

    function gone(status) { return status === 401 || status === 403 || status === 410; }

    // the browser's HLS player says nothing of HTTP statuses: ask the playlist ourselves
    function check() {
      fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        if (stopped) { return; }
        if (gone(r.status)) { events.ended(); } else { events.failed("Flux interrompu. Fermez puis rouvrez la caméra."); }
      }).catch(function () { if (!stopped) { events.failed("Connexion perdue."); } });
    }

    function onError() { if (!stopped) { check(); } }

    function play() {
      video.addEventListener("error", onError);
      video.src = url;
      if (video.requestVideoFrameCallback) {
        video.requestVideoFrameCallback(function () { if (!stopped) { events.shown(); } });
      } else {
        video.addEventListener("playing", function () { if (!stopped) { events.shown(); } }, { once: true });
      }
      var p = video.play();
      if (p && p.catch) { p.catch(function () { /* autoplay of a muted video: retried by the browser */ }); }
    }

    // wait for the first segment (503 until then) before handing the URL to the browser
    function ready() {
      fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        if (stopped) { return; }
        if (r.ok) { play(); return; }
        if (gone(r.status)) { events.ended(); return; }
        tries += 1;
        if (tries > READY_TRIES) { events.failed("La caméra n'envoie pas d'image."); return; }
        timer = setTimeout(ready, READY_POLL_MS);
      }).catch(function () {
        if (!stopped) { timer = setTimeout(ready, READY_POLL_MS * 3); }
      });
    }

    ready();
    return {
      stop: function () {
        stopped = true;
        clearTimeout(timer);
        video.removeEventListener("error", onError);
      }
    };
  }

  window.VigieFallback = {
    kind: kind,
    hls: function (video, cameraId, quality, events) {
      var url = "/live/api/cam/" + encodeURIComponent(cameraId) + "/hls/" + quality + "/index.m3u8";
      return Hls(video, url, events);
    }
  };
})();
