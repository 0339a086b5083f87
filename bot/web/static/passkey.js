/* Vigie passkeys: one-touch sign-in on a live link ("Se connecter avec une clé d'accès") and the
   enrolment page. WebAuthn in the browser, every check on the server; JSON over same-origin fetch.
   The options and answers are WebAuthn's JSON forms (base64url), converted here by hand so that
   browsers without PublicKeyCredential.parse*FromJSON work too. */
(function () {
  "use strict";

  function b64urlToBytes(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function bytesToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) { return {type: d.type, id: b64urlToBytes(d.id), transports: d.transports}; });
  }

  function creationOptions(o) {
    var pk = Object.assign({}, o);
    pk.challenge = b64urlToBytes(o.challenge);
    pk.user = Object.assign({}, o.user, {id: b64urlToBytes(o.user.id)});
    pk.excludeCredentials = descriptors(o.excludeCredentials);
    return pk;
  }

  function requestOptions(o) {
    var pk = Object.assign({}, o);
    pk.challenge = b64urlToBytes(o.challenge);
    pk.allowCredentials = descriptors(o.allowCredentials);
    return pk;
  }

  function credentialJSON(cred) {
    var r = cred.response, out = {id: cred.id, rawId: bytesToB64url(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {clientDataJSON: bytesToB64url(r.clientDataJSON)}};
    if (cred.authenticatorAttachment) { out.authenticatorAttachment = cred.authenticatorAttachment; }
    if (r.attestationObject) {
      out.response.attestationObject = bytesToB64url(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = bytesToB64url(r.authenticatorData);
      out.response.signature = bytesToB64url(r.signature);
      out.response.userHandle = r.userHandle ? bytesToB64url(r.userHandle) : null;
    }
    return out;
  }

  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
                       body: JSON.stringify(body)}).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) { throw new Error(data.error || ("Erreur " + res.status)); }
        return data;
      });
    });
  }

  function show(el, text) { el.textContent = text; el.hidden = !text; }

  function browserError(e) {
    if (e && e.name === "NotAllowedError") { return "Opération annulée ou aucune clé d'accès pour ce site sur cet appareil."; }
    if (e && e.name === "InvalidStateError") { return "Cet appareil a déjà une clé d'accès enregistrée pour vous."; }
    return (e && e.message) || "Clé d'accès indisponible.";
  }

  function initSignIn() {
    var box = document.getElementById("passkey");
    if (!box || !window.PublicKeyCredential || !navigator.credentials) { return; }
    var button = document.getElementById("passkey-button"), error = document.getElementById("passkey-error");
    var action = box.getAttribute("data-action");
    var FRESH_MS = 60000; // the server forgets a challenge after 2 min
    var prefetched = null, fetchedAt = 0;
    // Asked for as soon as the page is shown, so that the tap goes straight to the phone's sensor.
    function prefetch() {
      fetchedAt = performance.now();
      prefetched = post(action + "/passkey/options", {});
      prefetched.catch(function () { prefetched = null; });
    }
    function options() { // a challenge serves once
      var p = prefetched && performance.now() - fetchedAt < FRESH_MS ? prefetched : post(action + "/passkey/options", {});
      prefetched = null;
      return p;
    }
    box.hidden = false;
    prefetch();
    button.addEventListener("click", function () {
      button.disabled = true;
      show(error, "");
      options().then(function (o) {
        return navigator.credentials.get({publicKey: requestOptions(o)});
      }).then(function (cred) {
        return post(action + "/passkey", {credential: credentialJSON(cred)});
      }).then(function (data) {
        window.location.assign(data.location || "/live/view");
      }).catch(function (e) {
        show(error, browserError(e));
        button.disabled = false;
      });
    });
  }

  function initEnrol() {
    var form = document.getElementById("enrol");
    if (!form) { return; }
    var error = document.getElementById("enrol-error"), done = document.getElementById("enrol-done");
    var action = form.getAttribute("data-action"), button = form.querySelector("button");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show(error, "Ce navigateur ne gère pas les clés d'accès : ouvrez ce lien sur le téléphone, dans son navigateur habituel.");
      button.disabled = true;
      return;
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      button.disabled = true;
      show(error, "");
      var label = document.getElementById("label").value;
      post(action + "/options", {password: document.getElementById("password").value}).then(function (options) {
        return navigator.credentials.create({publicKey: creationOptions(options)});
      }).then(function (cred) {
        return post(action + "/register", {credential: credentialJSON(cred), label: label});
      }).then(function (data) {
        form.hidden = true;
        show(done, data.message || "Clé d'accès enregistrée.");
      }).catch(function (e) {
        show(error, browserError(e));
        button.disabled = false;
      });
    });
  }

  window.VigiePasskey = {requestOptions: requestOptions, credentialJSON: credentialJSON, post: post};
  document.addEventListener("DOMContentLoaded", function () { initSignIn(); initEnrol(); });
}());
