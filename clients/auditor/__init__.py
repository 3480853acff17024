"""The auditor's offline verification, and the `consentry-audit` command (`cli`).

- `tlog`: the transparency-log primitive, which the server uses too: RFC 9162 §2.1 Merkle tree
  hashing, inclusion and consistency proofs, C2SP signed notes with Ed25519 and C2SP tlog-checkpoints.
- `api`: a typed httpx client for the server's auditor API (`AuditorClient`).
- `verify`: `verify_log`, which downloads and checks a whole log against its signed checkpoint and
  the checkpoint a previous run remembered (`AuditorState`), hashing as it streams (`tlog.StreamingTree`).
- `replay`: `check_reads`, which replays the log's grant events and lists uncovered profile reads.
- `versions`: `API_VERSIONS`, the server API versions this tool speaks (`consentry-audit --version`);
  the API client refuses a server that serves none of them (`IncompatibleServer`).
- `receipt`: `verify_receipt`, which checks a consent receipt bundle: its JWS signature by a trusted
  key, its claims against its audit entry, and the entry's inclusion under a checkpoint signed by the
  pinned log key.

Verification functions of `tlog.merkle` answer True or False; notes, keys and checkpoints fail with
one `NoteError`; the API client's failures derive from `AuditorAPIError`; `verify_log`, `check_reads` and
`verify_receipt` return reports listing what failed.

The names below are loaded when first used (PEP 562): importing `clients.auditor.tlog`, as the server
does, loads the primitive alone, never the HTTP client, the verifier or the receipt checker.
"""

import importlib as _importlib
import typing as _typing

# Only the names of __all__ are public here: the test of the public API checks that nothing else is.
if _typing.TYPE_CHECKING:
    from clients.auditor.api import (
        AuditorAPIError,
        AuditorClient,
        EntriesPage,
        HTTPProblem,
        InclusionProof,
        IncompatibleServer,
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
    from clients.auditor.versions import API_VERSIONS

# name → the module of this package that defines it
_EXPORTS = {
    "API_VERSIONS": "versions",
    "AuditorAPIError": "api",
    "AuditorClient": "api",
    "AuditorState": "verify",
    "Checkpoint": "tlog",
    "EntriesPage": "api",
    "HTTPProblem": "api",
    "IncompatibleServer": "api",
    "InclusionProof": "api",
    "KeySource": "verify",
    "MalformedResponse": "api",
    "NoteError": "tlog",
    "ReadViolation": "replay",
    "ReceiptReport": "receipt",
    "Replay": "replay",
    "ReplayReport": "replay",
    "ServerUnreachable": "api",
    "Signer": "tlog",
    "StateError": "verify",
    "StreamingTree": "tlog",
    "TokenRefused": "api",
    "Verifier": "tlog",
    "VerifyReport": "verify",
    "check_reads": "replay",
    "consistency_proof": "tlog",
    "format_checkpoint": "tlog",
    "generate_private_key": "tlog",
    "inclusion_proof": "tlog",
    "leaf_hash": "tlog",
    "load_state": "verify",
    "node_hash": "tlog",
    "open_note": "tlog",
    "parse_checkpoint": "tlog",
    "parse_private_key": "tlog",
    "parse_verifier_key": "tlog",
    "root_hash": "tlog",
    "save_state": "verify",
    "verify_consistency": "tlog",
    "verify_inclusion": "tlog",
    "verify_log": "verify",
    "verify_receipt": "receipt",
}
__all__ = [
    "API_VERSIONS",
    "AuditorAPIError",
    "AuditorClient",
    "AuditorState",
    "Checkpoint",
    "EntriesPage",
    "HTTPProblem",
    "InclusionProof",
    "IncompatibleServer",
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


def __getattr__(name: str) -> _typing.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clients.auditor' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"clients.auditor.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
