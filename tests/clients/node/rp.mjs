// An unmodified `openid-client` (the certified relying-party library) as a brand's engineer would use
// it against Consentry, in two steps that tests/clients/test_openid_client.py runs around the
// customer's consent:
//
//   node rp.mjs start  ISSUER CLIENT_ID SECRET REDIRECT_URI OFFER_ID STATE_FILE   -> prints the URL
//   node rp.mjs finish ISSUER CLIENT_ID SECRET CALLBACK_URL STATE_FILE           -> prints JSON
//
// `finish` redeems the code (PKCE, state, nonce and the RFC 9207 iss checked by the library, and the
// ID token's signature against the JWKS: non-repudiation checks on), reads UserInfo, refreshes,
// introspects, builds the RP-initiated logout URL, and revokes. Plain HTTP is allowed only because
// the test server listens on loopback.
import { readFileSync, writeFileSync } from "node:fs";
import * as client from "openid-client";

const [, , step, issuer, clientId, secret, ...rest] = process.argv;

async function configuration() {
  const config = await client.discovery(new URL(issuer), clientId, secret, undefined, {
    execute: [client.allowInsecureRequests],
  });
  client.enableNonRepudiationChecks(config);
  return config;
}

async function start(redirectUri, offerId, stateFile) {
  const config = await configuration();
  const codeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid email profile",
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    nonce,
    state,
    offer: offerId,
  });
  writeFileSync(stateFile, JSON.stringify({ codeVerifier, nonce, state }));
  process.stdout.write(url.href);
}

async function finish(callbackUrl, stateFile) {
  const config = await configuration();
  const { codeVerifier, nonce, state } = JSON.parse(readFileSync(stateFile, "utf8"));
  const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const introspection = await client.tokenIntrospection(config, refreshed.access_token);
  const metadata = config.serverMetadata();
  const logout = metadata.end_session_endpoint
    ? client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, state: "bye" }).href
    : null;
  await client.tokenRevocation(config, refreshed.refresh_token);
  const afterRevocation = await client.tokenIntrospection(config, refreshed.access_token);
  const out = {
    claims,
    scope: tokens.scope,
    userinfo,
    refreshed_scope: refreshed.scope,
    introspection,
    after_revocation: afterRevocation,
    logout,
  };
  process.stdout.write(JSON.stringify(out));
}

try {
  if (step === "start") await start(...rest);
  else if (step === "finish") await finish(...rest);
  else throw new Error(`unknown step ${step}`);
} catch (error) {
  process.stderr.write(`${error.name}: ${error.message}\n${error.cause ? JSON.stringify(error.cause) : ""}\n`);
  process.exit(1);
}
