// Passkeys in the portal: fills a form's hidden `credential` field from navigator.credentials, then
// submits the form. No inline script (the portal's CSP allows only 'self' scripts).
//
// <form data-passkey="get|create" data-options-url="/v1/..."> fetches its options (POST, same origin);
// <form data-passkey="get" data-options='{...}'> carries them. Both need <input name="credential">.
"use strict";

(function () {
  function toBytes(base64url) {
    const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    const binary = atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeOptions(options) {
    const publicKey = Object.assign({}, options, { challenge: toBytes(options.challenge) });
    if (options.user) publicKey.user = Object.assign({}, options.user, { id: toBytes(options.user.id) });
    ["excludeCredentials", "allowCredentials"].forEach(function (name) {
      if (options[name]) {
        publicKey[name] = options[name].map(function (c) { return Object.assign({}, c, { id: toBytes(c.id) }); });
      }
    });
    return publicKey;
  }

  function encodeCredential(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: {},  // nothing the server checks (a PRF output must never leave the browser)
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    };
  }

  async function options(form) {
    if (form.dataset.options) return JSON.parse(form.dataset.options);
    const answer = await fetch(form.dataset.optionsUrl, {
      method: "POST", credentials: "same-origin", headers: { Accept: "application/json" },
    });
    if (!answer.ok) throw new Error("the server refused to start (" + answer.status + ")");
    return answer.json();
  }

  function report(form, message) {
    const status = form.querySelector("[data-passkey-status]");
    if (status) status.textContent = message;
  }

  async function run(form) {
    if (!window.PublicKeyCredential) {
      report(form, "This browser cannot use passkeys.");
      return;
    }
    try {
      const publicKey = decodeOptions(await options(form));
      // A new passkey is asked for the PRF extension, so it can also unlock a vault in self-custody.
      if (form.dataset.passkey === "create") publicKey.extensions = Object.assign({}, publicKey.extensions, { prf: {} });
      const credential = form.dataset.passkey === "create"
        ? await navigator.credentials.create({ publicKey: publicKey })
        : await navigator.credentials.get({ publicKey: publicKey });
      form.querySelector("input[name=credential]").value = JSON.stringify(encodeCredential(credential));
      form.submit();
    } catch (error) {
      report(form, "The passkey did not work: " + (error && error.message ? error.message : error) + ". Try again.");
    }
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.querySelector("input[name=credential]").value) return;
      event.preventDefault();
      if (!form.reportValidity()) return;
      run(form);
    });
  });
})();
