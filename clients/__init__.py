"""Consentry's clients: code that talks to a Consentry server and trusts none of its code.

Packages here depend only on httpx, cryptography and pydantic (and typer/rich for command lines),
never on `vault` or `broker`, so an auditor can check the server with code the server did not write,
and a brand can install the SDK without the server.

- `clients.auditor`: offline verification of the audit log (Merkle proofs, signed checkpoints)
  and the `consentry-audit` command.
- `clients.brand`: the brand SDK (httpx, pydantic and the standard library only): sync and async
  clients for the OAuth flow and the brand API, and the webhook verifier.
"""

__all__: list[str] = []
