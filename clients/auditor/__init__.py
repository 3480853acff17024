"""The auditor's offline verification, and the `consentry-audit` command (`cli`).

- `tlog`: the transparency-log primitive, which the server uses too: RFC 9162 §2.1 Merkle tree
  hashing, inclusion and consistency proofs, C2SP signed notes with Ed25519 and C2SP tlog-checkpoints.
- `api`: a typed httpx client for the server's auditor API (`AuditorClient`).
- `verify`: `verify_log`, which downloads and checks a whole log against its signed checkpoint and
  the checkpoint a previous run remembered (`AuditorState`), hashing as it streams (`tlog.StreamingTree`).
- `replay`: `check_reads`, which replays the log's grant events and lists uncovered profile reads.
- `receipt`: `verify_receipt`, which checks a consent receipt bundle: its JWS signature by a trusted
  key, its claims against its audit entry, and the entry's inclusion under a checkpoint signed by the
  pinned log key.

Verification functions of `tlog.merkle` answer True or False; notes, keys and checkpoints fail with
one `NoteError`; the API client's failures derive from `AuditorAPIError`; `verify_log`, `check_reads` and
`verify_receipt` return reports listing what failed.
"""

from clients.auditor.api import (
    AuditorAPIError,
    AuditorClient,
    EntriesPage,
    HTTPProblem,
    InclusionProof,
    MalformedResponse,
    ServerUnreachable,
    TokenRefused,
)
from clients.auditor.receipt import ReceiptReport, verify_receipt
from clients.auditor.replay import ReadViolation, Replay, ReplayReport, check_reads
from clients.auditor.tlog import (
    Checkpoint,
    NoteError,
    Signer,
    StreamingTree,
    Verifier,
    consistency_proof,
    format_checkpoint,
    generate_private_key,
    inclusion_proof,
    leaf_hash,
    node_hash,
    open_note,
    parse_checkpoint,
    parse_private_key,
    parse_verifier_key,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from clients.auditor.verify import (
    AuditorState,
    KeySource,
    StateError,
    VerifyReport,
    load_state,
    save_state,
    verify_log,
)

__all__ = [
    "AuditorAPIError",
    "AuditorClient",
    "AuditorState",
    "Checkpoint",
    "EntriesPage",
    "HTTPProblem",
    "InclusionProof",
    "KeySource",
    "MalformedResponse",
    "NoteError",
    "ReadViolation",
    "ReceiptReport",
    "Replay",
    "ReplayReport",
    "ServerUnreachable",
    "Signer",
    "StateError",
    "StreamingTree",
    "TokenRefused",
    "Verifier",
    "VerifyReport",
    "check_reads",
    "consistency_proof",
    "format_checkpoint",
    "generate_private_key",
    "inclusion_proof",
    "leaf_hash",
    "load_state",
    "node_hash",
    "open_note",
    "parse_checkpoint",
    "parse_private_key",
    "parse_verifier_key",
    "root_hash",
    "save_state",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
    "verify_receipt",
]
