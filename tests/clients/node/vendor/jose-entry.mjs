// The part of panva's jose (npm, MIT) the portal uses to seal a self-custody grant to its brand: a
// compact JWE, ECDH-ES and A256GCM, to the brand's public JWK. Bundled by vendor/build.mjs into
// broker/portal/static/vendor/jose.js; tests/clients/test_vendored_scripts.py rebuilds it and compares.
export { CompactEncrypt, importJWK } from "jose";
