"""Consentry's clients: code that talks to a Consentry server and trusts none of its code.

Packages here depend only on httpx, cryptography and pydantic (and typer/rich for command lines),
never on `vault` or `broker`, so an auditor can check the server with code the server did not write.

- `clients.auditor`: offline verification of the audit log (Merkle proofs, signed checkpoints)
  and the `consentry-audit` command.
"""

__all__: list[str] = []
