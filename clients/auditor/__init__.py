"""The auditor's offline verification primitives, and the `consentry-audit` command (`cli`).

- `merkle`: RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs.
- `note`: C2SP signed notes with Ed25519 and C2SP tlog-checkpoints.

Verification functions of `merkle` answer True or False; everything in `note` fails with one
`NoteError`.
"""

from clients.auditor.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from clients.auditor.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    format_checkpoint,
    generate_private_key,
    open_note,
    parse_checkpoint,
    parse_private_key,
    parse_verifier_key,
)

__all__ = [
    "Checkpoint",
    "NoteError",
    "Signer",
    "Verifier",
    "consistency_proof",
    "format_checkpoint",
    "generate_private_key",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_note",
    "parse_checkpoint",
    "parse_private_key",
    "parse_verifier_key",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]
