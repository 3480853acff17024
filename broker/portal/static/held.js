// Self-custody in the portal: the customer's browser holds the key of their profile.
//
// Everything here runs in the browser, with WebCrypto; the server receives ciphertexts, wrapped keys
// and JWEs sealed to brands, never the key nor a value of a held field (vault/held.py gives the
// formats, which this file must follow byte for byte):
// - the held key: 256 random bits; each field sealed with AES-256-GCM, 0x01 ‖ nonce ‖ ciphertext,
//   AAD "consentry/field/v1" ‖ customer id ‖ u16 len(name) ‖ name ‖ u32 key version (the server's format);
// - each unlock wraps the key under HKDF-SHA256(PRF output or recovery key, 32-byte salt,
//   "consentry/held-unlock/v1/<kind>"), AAD "consentry/held-dek-wrap/v1" ‖ customer id ‖ u32 version;
// - a grant is sealed to its brand as a compact JWE (ECDH-ES, A256GCM, cty consentry-grant+json) with
//   the vendored jose (vendor/jose.js, globalThis.ConsentryJose).
// The key lives in this page's memory only: each page asks for a passkey (or the recovery key) again.
"use strict";

(function () {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const FIELD_PURPOSE = "consentry/field/v1";
  const WRAP_PURPOSE = "consentry/held-dek-wrap/v1";
  const INFO = { passkey: "consentry/held-unlock/v1/passkey", recovery: "consentry/held-unlock/v1/recovery" };
  const CONTENT_TYPE = "consentry-grant+json";
  const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

  // ---- bytes ----------------------------------------------------------------------------------
  function b64(bytes) {
    const view = new Uint8Array(bytes);
    let binary = "";
    for (let i = 0; i < view.length; i += 1) binary += String.fromCharCode(view[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function unb64(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }
  function concat() {
    const parts = Array.prototype.slice.call(arguments);
    const out = new Uint8Array(parts.reduce(function (n, p) { return n + p.length; }, 0));
    let at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }
  function u32(n) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b; }
  function u16(n) { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, n); return b; }
  function uuidBytes(id) { return Uint8Array.from(id.replace(/-/g, "").match(/../g).map(function (h) { return parseInt(h, 16); })); }
  function random(n) { return crypto.getRandomValues(new Uint8Array(n)); }

  // The recovery key as people copy it: base32 in groups of four (52 letters and digits for 32 bytes).
  function recoveryText(bytes) {
    let bits = 0, value = 0, out = "";
    bytes.forEach(function (byte) {
      value = (value << 8) | byte; bits += 8;
      while (bits >= 5) { out += BASE32[(value >>> (bits - 5)) & 31]; bits -= 5; }
    });
    if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
    return out.match(/.{1,4}/g).join("-");
  }
  function recoveryBytes(text) {
    const clean = text.toUpperCase().replace(/[^A-Z2-7]/g, "");
    if (clean.length !== 52) throw new Error("A recovery key has 52 letters and digits (13 groups of 4).");
    let bits = 0, value = 0;
    const out = [];
    for (const char of clean) {
      value = (value << 5) | BASE32.indexOf(char); bits += 5;
      if (bits >= 8) { out.push((value >>> (bits - 8)) & 255); bits -= 8; }
    }
    return Uint8Array.from(out.slice(0, 32));
  }

  // ---- the vault's formats ------------------------------------------------------------------------
  function fieldAad(customerId, name, version) {
    const bytes = enc.encode(name);
    return concat(enc.encode(FIELD_PURPOSE), uuidBytes(customerId), u16(bytes.length), bytes, u32(version));
  }
  function wrapAad(customerId, version) {
    return concat(enc.encode(WRAP_PURPOSE), uuidBytes(customerId), u32(version));
  }
  async function aesSeal(key, plaintext, aad) {
    const nonce = random(12);
    const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, plaintext);
    return concat(Uint8Array.of(1), nonce, new Uint8Array(sealed));
  }
  async function aesOpen(key, blob, aad) {
    if (blob[0] !== 1) throw new Error("not a sealed value");
    const opened = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: blob.slice(1, 13), additionalData: aad }, key, blob.slice(13));
    return new Uint8Array(opened);
  }
  async function unlockKey(kind, ikm, salt) {
    const base = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveKey"]);
    return crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: salt, info: enc.encode(INFO[kind]) },
      base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  }
  async function wrap(kind, ikm, rawKey, customerId, version) {
    const salt = random(32);
    const wrapped = await aesSeal(await unlockKey(kind, ikm, salt), rawKey, wrapAad(customerId, version));
    return { kind: kind, salt: b64(salt), wrapped_key: b64(wrapped) };
  }
  async function unwrap(unlock, ikm, customerId, version) {
    const key = await unlockKey(unlock.kind, ikm, unb64(unlock.salt));
    return aesOpen(key, unb64(unlock.wrapped_key), wrapAad(customerId, version));
  }

  // An open vault: the held key (raw bytes kept for wrapping it under another unlock) and the values.
  async function openVault(state, rawKey) {
    const version = state.held ? state.held.data_key_version : 1;
    const key = await crypto.subtle.importKey("raw", rawKey, "AES-GCM", false, ["encrypt", "decrypt"]);
    const values = {};
    if (state.held) {
      for (const name of Object.keys(state.held.fields)) {
        const plain = await aesOpen(key, unb64(state.held.fields[name]), fieldAad(state.customer_id, name, version));
        values[name] = JSON.parse(dec.decode(plain));
      }
    }
    return { state: state, raw: rawKey, key: key, version: version, values: values };
  }
  // A value's JSON, padded with spaces (JSON ignores them) to a multiple of `size` bytes: a ciphertext's
  // length then tells little about the value ("kosher" and "vegan" seal to the same length).
  function padded(value, size) {
    const json = enc.encode(JSON.stringify(value));
    const length = Math.max(size, Math.ceil(json.length / size) * size);
    const out = new Uint8Array(length).fill(0x20);
    out.set(json);
    return out;
  }
  async function sealField(vault, name, value) {
    const plain = padded(value, 64);
    return b64(await aesSeal(vault.key, plain, fieldAad(vault.state.customer_id, name, vault.version)));
  }

  // ---- what a brand is given ------------------------------------------------------------------------
  const AGE_BANDS = [[65, "65+"], [55, "55-64"], [45, "45-54"], [35, "35-44"], [25, "25-34"], [18, "18-24"], [0, "under_18"]];
  function derive(values, today) {
    const derived = {};
    if (typeof values.birthdate === "string") {
      const [y, m, d] = values.birthdate.split("-").map(Number);
      const age = today.getUTCFullYear() - y - ((today.getUTCMonth() + 1 < m || (today.getUTCMonth() + 1 === m && today.getUTCDate() < d)) ? 1 : 0);
      derived.age_band = AGE_BANDS.find(function (b) { return age >= b[0]; })[1];
    }
    if (typeof values.country === "string" && typeof values.postcode === "string") {
      const compact = values.postcode.replace(/ /g, "");
      const pattern = { GB: /^[A-Z]{1,2}/, US: /^[0-9]{3}/ }[values.country] || /^.{2}/;
      const area = compact.match(pattern);
      if (area) derived.region = values.country + "-" + area[0];
    }
    return derived;
  }
  // Every value a grant could carry: the held ones, the email (when confirmed) and the derived ones.
  function shareable(vault, values) {
    const all = Object.assign({}, values);
    if (vault.state.email && vault.state.email_verified) all.email = vault.state.email;
    return Object.assign(all, derive(values, new Date()));
  }
  async function sealGrant(vault, grant, values, version) {
    const jose = globalThis.ConsentryJose;
    if (!grant.keys.length) {
      throw new Error((grant.brand_name || "This brand") + " no longer has a key to receive sealed data: end that grant.");
    }
    const jwk = grant.keys[0];
    const publicKey = await jose.importJWK(jwk, "ECDH-ES");
    const copies = {};
    for (const purpose of Object.keys(grant.purposes)) {
      const fields = {};
      grant.purposes[purpose].forEach(function (name) { if (values[name] !== undefined) fields[name] = values[name]; });
      const claims = {
        iss: vault.state.issuer, aud: grant.client_id, sub: grant.sub, grant_id: grant.grant_id,
        grant_version: version, purpose: purpose, fields: fields, iat: Math.floor(Date.now() / 1000),
      };
      copies[purpose] = await new jose.CompactEncrypt(padded(claims, 512))
        .setProtectedHeader({ alg: "ECDH-ES", enc: "A256GCM", kid: jwk.kid, cty: CONTENT_TYPE })
        .encrypt(publicKey);
    }
    return { version: version, copies: copies };
  }

  // ---- the server -------------------------------------------------------------------------------------
  class Problem extends Error {
    constructor(body, status) {
      super((body && body.detail) || "The request failed (" + status + ").");
      this.body = body || {};
      this.status = status;
    }
  }
  async function api(method, path, body) {
    const answer = await fetch(path, {
      method: method, credentials: "same-origin",
      headers: Object.assign({ Accept: "application/json" }, body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await answer.text();
    const parsed = text ? JSON.parse(text) : null;
    if (!answer.ok) throw new Problem(parsed, answer.status);
    return parsed;
  }
  const custody = function () { return api("GET", "/v1/me/custody"); };

  // A passkey's PRF output for the vault's input; with `options` (a server's challenge: a sign-in
  // that also renews the session's proof) the assertion goes to the server, without the PRF output.
  async function passkeyPrf(state, options) {
    const allowed = state.passkeys.filter(function (p) { return options || p.unlocks; });
    if (!allowed.length) throw new Error("None of your passkeys can unlock this vault: use your recovery key.");
    const publicKey = {
      challenge: options ? unb64(options.challenge) : random(32),
      allowCredentials: allowed.map(function (p) { return { type: "public-key", id: unb64(p.credential_id) }; }),
      userVerification: "required",
      timeout: 120000,
      extensions: { prf: { eval: { first: unb64(state.prf_input) } } },
    };
    const rpId = options && options.rpId ? options.rpId : state.rp_id;
    if (rpId) publicKey.rpId = rpId;
    const credential = await navigator.credentials.get({ publicKey: publicKey });
    const results = credential.getClientExtensionResults();
    if (!results.prf || !results.prf.results || !results.prf.results.first) {
      throw new Error("This passkey cannot derive a key (it lacks the PRF extension): use another passkey.");
    }
    const used = b64(credential.rawId);
    const passkey = state.passkeys.find(function (p) { return p.credential_id === used; });
    if (options) {
      const r = credential.response;
      await api("POST", "/v1/sessions/current/reauthenticate", { credential: {
        id: credential.id, rawId: used, type: credential.type, clientExtensionResults: {},
        response: { clientDataJSON: b64(r.clientDataJSON), authenticatorData: b64(r.authenticatorData),
                    signature: b64(r.signature), userHandle: r.userHandle ? b64(r.userHandle) : undefined },
      } });
    }
    return { passkeyId: passkey.id, prf: new Uint8Array(results.prf.results.first) };
  }
  async function freshPrf(state) {
    return passkeyPrf(state, await api("POST", "/v1/sessions/current/reauthenticate/options"));
  }

  // Unlock with a passkey or the recovery key: the open vault.
  async function unlockWithPasskey(state) {
    const found = await passkeyPrf(state);
    const unlock = state.held.unlocks.find(function (u) { return u.passkey_id === found.passkeyId; });
    return openVault(state, await unwrap(unlock, found.prf, state.customer_id, state.held.data_key_version));
  }
  async function unlockWithRecovery(state, text) {
    const unlock = state.held.unlocks.find(function (u) { return u.kind === "recovery"; });
    try {
      return await openVault(state, await unwrap(unlock, recoveryBytes(text), state.customer_id, state.held.data_key_version));
    } catch (error) {
      if (error instanceof Error && /52 letters/.test(error.message)) throw error;
      throw new Error("That recovery key does not open this vault. Check it letter by letter.");
    }
  }

  // Grants whose sealed copy is missing, or sealed to a key their brand dropped: sealed anew now that
  // the vault is open (a brand without any key left is skipped: the customer must end that grant).
  async function catchUp(vault, state) {
    const grants = {};
    const names = [];
    for (const grant of state.grants) {
      if (grant.sealed || !grant.keys.length) continue;
      grants[grant.grant_id] = await sealGrant(vault, grant, shareable(vault, vault.values), grant.sealed_version + 1);
      names.push(grant.brand_name);
    }
    if (names.length) await api("POST", "/v1/me/custody/seals", { grants: grants });
    return names;
  }

  // ---- values as the profile form gives them ------------------------------------------------------------
  const TEXT = { phone: 64, given_name: 100, family_name: 100, city: 100 };
  function formValues(form, rules) {
    const values = {}, errors = {};
    const text = function (name) { const input = form.elements[name]; return input ? input.value.trim() : ""; };
    const control = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
    ["given_name", "family_name", "city"].forEach(function (name) {
      const value = text(name);
      if (!value) return;
      if (value.length > TEXT[name] || control.test(value)) errors[name] = name + " must be text of 1 to 100 characters, without line breaks";
      else values[name] = value;
    });
    const phone = text("phone").replace(/[ \-().]/g, "");
    if (phone) { if (/^\+[1-9][0-9]{6,14}$/.test(phone)) values.phone = phone; else errors.phone = "phone must be in E.164 form, e.g. +447400123456"; }
    const postcode = text("postcode").split(/\s+/).join(" ").toUpperCase();
    if (postcode) { if (/^[A-Z0-9 -]{2,10}$/.test(postcode)) values.postcode = postcode; else errors.postcode = "postcode must be 2 to 10 letters, digits, spaces or hyphens"; }
    const country = text("country").toUpperCase();
    if (country) { if (rules.countries.indexOf(country) >= 0) values.country = country; else errors.country = "country must be an ISO 3166-1 alpha-2 code such as GB or FR"; }
    const birthdate = text("birthdate");
    if (birthdate) {
      const day = new Date(birthdate + "T00:00:00Z");
      if (!/^\d{4}-\d{2}-\d{2}$/.test(birthdate) || isNaN(day) || day.toISOString().slice(0, 10) !== birthdate) errors.birthdate = "birthdate must be a date written YYYY-MM-DD";
      else if (day > new Date() || birthdate < "1900-01-01") errors.birthdate = "birthdate must be a past date, on or after 1900-01-01";
      else values.birthdate = birthdate;
    }
    const size = text("household_size");
    if (size) { const n = Number(size); if (/^\d{1,2}$/.test(size) && n >= 1 && n <= 20) values.household_size = n; else errors.household_size = "household_size must be a whole number from 1 to 20"; }
    const stage = text("life_stage");
    if (stage) { if (rules.life_stages.indexOf(stage) >= 0) values.life_stage = stage; else errors.life_stage = "choose a life stage from the list"; }
    Object.keys(rules.choices).forEach(function (name) {
      const order = rules.choices[name];
      const ticked = Array.prototype.filter.call(form.querySelectorAll('input[name="' + name + '"]'), function (b) { return b.checked; })
        .map(function (b) { return b.value; }).filter(function (v) { return order.indexOf(v) >= 0; });
      if (name === "interests" && ticked.length > rules.max_interests) errors.interests = "interests holds at most " + rules.max_interests + " tags";
      else if (ticked.length) values[name] = ticked.sort(function (a, b) { return order.indexOf(a) - order.indexOf(b); });
    });
    return { values: values, errors: errors };
  }
  function fillForm(form, values) {
    Object.keys(values).forEach(function (name) {
      const value = values[name];
      if (Array.isArray(value)) {
        form.querySelectorAll('input[name="' + name + '"]').forEach(function (box) { box.checked = value.indexOf(box.value) >= 0; });
      } else if (form.elements[name]) {
        form.elements[name].value = String(value);
      }
    });
  }

  // The grants an edit reaches: those holding a changed field, or a field derived from one.
  const DERIVED_FROM = { age_band: ["birthdate"], region: ["country", "postcode"] };
  function reached(state, changed) {
    const names = changed.slice();
    Object.keys(DERIVED_FROM).forEach(function (d) { if (DERIVED_FROM[d].some(function (n) { return changed.indexOf(n) >= 0; })) names.push(d); });
    return state.grants.filter(function (g) {
      return Object.keys(g.purposes).some(function (p) { return g.purposes[p].some(function (f) { return names.indexOf(f) >= 0; }); });
    });
  }
  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

  // ---- page wiring --------------------------------------------------------------------------------------
  function say(root, message, kind) {
    const box = root.querySelector("[data-held-message]");
    if (!box) return;
    box.textContent = message;
    box.className = kind === "error" ? "error" : "ok";
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    box.hidden = !message;
  }
  function problemText(error) {
    if (error && error.name === "NotAllowedError") return "The passkey prompt was closed or timed out. Try again.";
    return error && error.message ? error.message : String(error);
  }
  function show(root, selector, visible) {
    root.querySelectorAll(selector).forEach(function (el) { el.hidden = !visible; });
  }

  // The custody page: move to self-custody (and back), unlock with the recovery key, add a passkey.
  function custodyPage(root) {
    let opened = null;
    let pendingRecovery = null;
    async function refresh() {
      const state = await custody();
      root.querySelector("[data-custody-now]").textContent = state.custody === "customer"
        ? "Only you hold the key to your profile." : "Consentry holds the key to your profile.";
      show(root, "[data-when-broker]", state.custody === "broker");
      show(root, "[data-when-customer]", state.custody === "customer");
      const list = root.querySelector("[data-unlocking-passkeys]");
      if (list) list.textContent = state.passkeys.filter(function (p) { return p.unlocks; }).length + " of your " + state.passkeys.length + " passkeys can unlock it.";
      return state;
    }
    root.querySelector("[data-action=prepare]") && root.querySelector("[data-action=prepare]").addEventListener("click", async function () {
      const agreed = root.querySelector("[name=understood]");
      if (!agreed.checked) return say(root, "Tick the box to say you understand: lose every passkey and the recovery key, and nobody can open your profile.", "error");
      pendingRecovery = random(32);
      root.querySelector("[data-recovery-key]").textContent = recoveryText(pendingRecovery);
      show(root, "[data-step=recovery]", true);
      say(root, "Write your recovery key down or print it, then move your profile.", "ok");
    });
    root.querySelector("[data-action=hold]") && root.querySelector("[data-action=hold]").addEventListener("click", async function () {
      try {
        if (!pendingRecovery) throw new Error("Make your recovery key first.");
        if (!root.querySelector("[name=saved]").checked) throw new Error("Tick the box once your recovery key is written down or printed.");
        let state = await custody();
        if (!state.passkeys.length) throw new Error("Add a passkey first (Security): it is how you will unlock your profile.");
        const unsealable = state.grants.filter(function (g) { return !g.keys.length; });
        if (unsealable.length) throw new Error("End your grants to " + unsealable.map(function (g) { return g.brand_name; }).join(", ") + " first: they cannot receive sealed data.");
        say(root, "Confirm with your passkey…", "ok");
        const found = await freshPrf(state);
        state = await custody();
        const profile = (await api("GET", "/v1/me/profile")).fields;
        const held = {};
        Object.keys(profile).forEach(function (n) { if (n !== "email" && profile[n] !== null && profile[n] !== undefined) held[n] = profile[n]; });
        const rawKey = random(32);
        const vault = await openVault(Object.assign({}, state, { held: null }), rawKey);
        const fields = {};
        for (const name of Object.keys(held)) fields[name] = await sealField(vault, name, held[name]);
        const unlocks = [
          Object.assign(await wrap("passkey", found.prf, rawKey, state.customer_id, 1), { passkey_id: found.passkeyId }),
          await wrap("recovery", pendingRecovery, rawKey, state.customer_id, 1),
        ];
        const values = shareable(vault, held);
        const grants = {};
        for (const grant of state.grants) grants[grant.grant_id] = await sealGrant(vault, grant, values, grant.sealed_version + 1);
        await api("POST", "/v1/me/custody/hold", { fields: fields, unlocks: unlocks, grants: grants });
        pendingRecovery = null;
        show(root, "[data-step=recovery]", false);
        root.querySelector("[data-recovery-key]").textContent = "";
        await refresh();
        say(root, "Done: your profile is in your custody. Keep your recovery key safe.", "ok");
      } catch (error) { say(root, problemText(error), "error"); }
    });
    root.querySelector("[data-action=release]") && root.querySelector("[data-action=release]").addEventListener("click", async function () {
      try {
        let state = await custody();
        say(root, "Confirm with your passkey…", "ok");
        const found = await freshPrf(state);  // a fresh sign-in, whichever passkey: the move back needs one
        state = await custody();
        let vault = opened;  // already opened with the recovery key
        if (!vault) {
          const unlock = state.held.unlocks.find(function (u) { return u.passkey_id === found.passkeyId; });
          if (!unlock) throw new Error("This passkey does not unlock your profile: unlock with your recovery key below first.");
          vault = await openVault(state, await unwrap(unlock, found.prf, state.customer_id, state.held.data_key_version));
        }
        await api("POST", "/v1/me/custody/release", { fields: vault.values });
        opened = null;
        await refresh();
        say(root, "Done: Consentry holds the key to your profile again.", "ok");
      } catch (error) { say(root, problemText(error), "error"); }
    });
    root.querySelector("[data-action=recover]") && root.querySelector("[data-action=recover]").addEventListener("click", async function () {
      try {
        const state = await custody();
        opened = await unlockWithRecovery(state, root.querySelector("[name=recovery_key]").value);
        root.querySelector("[name=recovery_key]").value = "";
        show(root, "[data-when-unlocked]", true);
        say(root, "Unlocked with your recovery key. Let one of your passkeys unlock it from now on.", "ok");
      } catch (error) { say(root, problemText(error), "error"); }
    });
    root.querySelector("[data-action=add-passkey]") && root.querySelector("[data-action=add-passkey]").addEventListener("click", async function () {
      try {
        const state = await custody();
        if (!opened) opened = await unlockWithPasskey(state);
        say(root, "Now use the passkey that should unlock your profile…", "ok");
        const found = await freshPrf(state);  // any passkey of the account; the server wants a fresh sign-in
        const unlock = await wrap("passkey", found.prf, opened.raw, state.customer_id, state.held.data_key_version);
        await api("POST", "/v1/me/custody/unlocks", Object.assign(unlock, { passkey_id: found.passkeyId }));
        await refresh();
        say(root, "That passkey unlocks your profile now.", "ok");
      } catch (error) { say(root, problemText(error), "error"); }
    });
    refresh().catch(function (error) { say(root, problemText(error), "error"); });
  }

  // The profile page in self-custody: unlock, fill the form, seal what changed and the grants it reaches.
  function profilePage(form) {
    const root = form.closest("section") || document.body;
    const rules = JSON.parse(form.dataset.heldRules);
    let vault = null;
    async function unlock(how) {
      try {
        const state = await custody();
        vault = how === "recovery"
          ? await unlockWithRecovery(state, root.querySelector("[name=recovery_key]").value)
          : await unlockWithPasskey(state);
        fillForm(form, vault.values);
        show(root, "[data-when-locked]", false);
        show(root, "[data-when-unlocked]", true);
        form.querySelectorAll("button[type=submit]").forEach(function (button) { button.disabled = false; });
        const caught = await catchUp(vault, state);
        say(root, "Unlocked in this browser." + (caught.length ? " Sealed anew for: " + caught.join(", ") + "." : ""), "ok");
      } catch (error) { say(root, problemText(error), "error"); }
    }
    root.querySelectorAll("[data-action=unlock]").forEach(function (b) { b.addEventListener("click", function () { unlock(b.dataset.with); }); });
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      if (!vault) return say(root, "Unlock your profile first.", "error");
      const read = formValues(form, rules);
      if (Object.keys(read.errors).length) {
        return say(root, "Please fix: " + Object.keys(read.errors).map(function (n) { return read.errors[n]; }).join("; "), "error");
      }
      try {
        const state = await custody();
        const changed = [];
        const fields = {};
        const names = Object.keys(Object.assign({}, vault.values, read.values));
        for (const name of names) {
          if (same(vault.values[name], read.values[name])) continue;
          changed.push(name);
          fields[name] = read.values[name] === undefined ? null : await sealField(vault, name, read.values[name]);
        }
        if (!changed.length) return say(root, "Nothing changed.", "ok");
        const values = shareable(vault, read.values);
        const grants = {};
        const brands = [];
        for (const grant of reached(state, changed)) {
          grants[grant.grant_id] = await sealGrant(vault, grant, values, grant.sealed_version + 1);
          brands.push(grant.brand_name);
        }
        await api("PUT", "/v1/me/custody/fields", { fields: fields, grants: grants });
        vault.values = read.values;
        say(root, "Saved." + (brands.length ? " These brands will see the change: " + brands.join(", ") + "." : ""), "ok");
      } catch (error) { say(root, problemText(error), "error"); }
    });
  }

  // The consent screen in self-custody: the granted fields sealed to the brand before the form goes.
  function consentForm(form) {
    const root = form.closest("section") || document.body;
    const offer = JSON.parse(form.dataset.heldConsent);
    form.addEventListener("submit", async function (event) {
      // The consent screen's buttons say approve or deny; the directory's one button accepts.
      const submitter = event.submitter;
      const approves = !submitter || submitter.name !== "decision" || submitter.value === "approve";
      if (!approves || form.dataset.sealed === "yes") return;
      event.preventDefault();
      try {
        const state = await custody();
        say(root, "Unlock your profile with your passkey to seal what you share…", "ok");
        const vault = await unlockWithPasskey(state);
        const ticked = Array.prototype.filter.call(form.querySelectorAll('input[name="fields"]'), function (b) { return b.checked; }).map(function (b) { return b.value; });
        const selected = offer.fields.filter(function (n) {
          return (ticked.indexOf(n) >= 0 || offer.required.indexOf(n) >= 0) && (n !== "email" || state.email_verified);
        });
        let purposes = {};
        if (offer.purposes.length) {
          const agreed = Array.prototype.filter.call(form.querySelectorAll('input[name="purposes"]'), function (b) { return b.checked; }).map(function (b) { return b.value; });
          offer.purposes.forEach(function (p) {
            const used = p.fields.filter(function (n) { return selected.indexOf(n) >= 0; });
            if (agreed.indexOf(p.slug) >= 0 && used.length) purposes[p.slug] = used;
          });
        } else {
          purposes[offer.purpose] = selected;
        }
        const grantId = crypto.randomUUID();
        const grant = { grant_id: grantId, client_id: offer.client_id, sub: offer.sub, keys: offer.keys, purposes: purposes };
        const sealed = await sealGrant(vault, grant, shareable(vault, vault.values), 1);
        form.elements.grant_id.value = grantId;
        form.elements.sealed.value = JSON.stringify(sealed);
        form.dataset.sealed = "yes";
        if (submitter && submitter.name === "decision") {  // form.submit() sends no button's value
          const approve = document.createElement("input");
          approve.type = "hidden"; approve.name = "decision"; approve.value = "approve";
          form.appendChild(approve);
        }
        form.submit();
      } catch (error) { say(root, problemText(error), "error"); }
    });
  }

  // Narrowing a grant in self-custody: the kept fields sealed anew.
  function narrowForm(form) {
    const root = form.closest("section") || document.body;
    form.addEventListener("submit", async function (event) {
      if (form.dataset.sealed === "yes") return;
      event.preventDefault();
      try {
        const state = await custody();
        const grant = state.grants.find(function (g) { return g.grant_id === form.dataset.heldNarrow; });
        if (!grant) throw new Error("This grant is no longer live.");
        const vault = await unlockWithPasskey(state);
        const kept = Array.prototype.filter.call(form.querySelectorAll('input[name="fields"]'), function (b) { return b.checked || b.disabled; }).map(function (b) { return b.value; });
        const purposes = {};
        Object.keys(grant.purposes).forEach(function (p) {
          const used = grant.purposes[p].filter(function (n) { return kept.indexOf(n) >= 0; });
          if (used.length) purposes[p] = used;
        });
        const sealed = await sealGrant(vault, Object.assign({}, grant, { purposes: purposes }), shareable(vault, vault.values), grant.sealed_version + 1);
        form.elements.sealed.value = JSON.stringify(sealed);
        form.dataset.sealed = "yes";
        form.submit();
      } catch (error) { say(root, problemText(error), "error"); }
    });
  }

  document.querySelectorAll("[data-held-custody]").forEach(custodyPage);
  document.querySelectorAll("form[data-held-rules]").forEach(profilePage);
  document.querySelectorAll("form[data-held-consent]").forEach(consentForm);
  document.querySelectorAll("form[data-held-narrow]").forEach(narrowForm);
})();
