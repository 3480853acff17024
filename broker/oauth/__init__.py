"""The OAuth 2 authorization server, on Authlib's grant and endpoint classes.

RFC 6749 (authorization code, refresh token, client credentials), RFC 7636 (PKCE, S256 only),
RFC 7009 (revocation), RFC 7662 (introspection), RFC 8414 (metadata), RFC 9068 (JWT access tokens,
Ed25519), RFC 9207 (`iss` in authorization responses).

Authlib's objects stay in this package: callers get typed values (`authorize.ConsentRequest`,
`bearer.BrandAccess`) and Starlette responses. Token families follow grants as a notice subscriber
(`families.TokenFamilies`); the scope vocabulary is `broker.consent.scopes`.
"""
