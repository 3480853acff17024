"""The transparency-log primitive: what the server's audit log and the auditor both compute, once.

- `merkle`: RFC 9162 §2.1 Merkle tree hashing (leaf and node hashes, the tree hash, complete
  subtrees, the streaming compact range), inclusion and consistency proofs, generated and verified.
- `note`: C2SP signed notes (https://c2sp.org/signed-note): key ids, key strings, signing and opening.
- `checkpoint`: C2SP tlog-checkpoints (https://c2sp.org/tlog-checkpoint), the text a log signs.
- `tiles`: C2SP tlog-tiles (https://c2sp.org/tlog-tiles): tile paths, widths, entry bundles, and the
  root of a tree rebuilt from its hash tiles.
- `ed25519`: the Ed25519 note keys (`Verifier`, `Signer`), the only module that needs `cryptography`;
  the others use the standard library alone.

The auditor owns this package and it imports nothing outside the standard library and
`cryptography`; the server (`broker.audit`) uses it for every hash, proof, checkpoint and signature.
Known-answer vectors: tests/vectors/*.json. Verification functions of `merkle` answer True or False;
everything in `note`, `checkpoint` and `ed25519` fails with one `NoteError`.
"""

from clients.auditor.tlog.checkpoint import Checkpoint, format_checkpoint, parse_checkpoint
from clients.auditor.tlog.ed25519 import (
    Signer,
    Verifier,
    generate_private_key,
    parse_private_key,
    parse_verifier_key,
)
from clients.auditor.tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Span,
    StreamingTree,
    Subtree,
    SubtreeSink,
    consistency_proof,
    consistency_spans,
    inclusion_proof,
    inclusion_spans,
    leaf_hash,
    node_hash,
    range_root,
    root_hash,
    subtrees,
    verify_consistency,
    verify_inclusion,
)
from clients.auditor.tlog.note import MAX_NOTE_BYTES, MAX_SIGNATURES, NoteError, NoteVerifier, open_note
from clients.auditor.tlog.tiles import (
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    Tile,
    TileError,
    bundle_leaf_hashes,
    decode_bundle,
    encode_bundle,
    format_index,
    parse_tile_path,
    split_hashes,
    tile_root,
    tile_width,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_ENTRY_SIZE",
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "TILE_WIDTH",
    "Checkpoint",
    "NoteError",
    "NoteVerifier",
    "Signer",
    "Span",
    "StreamingTree",
    "Subtree",
    "SubtreeSink",
    "Tile",
    "TileError",
    "Verifier",
    "bundle_leaf_hashes",
    "consistency_proof",
    "consistency_spans",
    "decode_bundle",
    "encode_bundle",
    "format_checkpoint",
    "format_index",
    "generate_private_key",
    "inclusion_proof",
    "inclusion_spans",
    "leaf_hash",
    "node_hash",
    "open_note",
    "parse_checkpoint",
    "parse_private_key",
    "parse_tile_path",
    "parse_verifier_key",
    "range_root",
    "root_hash",
    "split_hashes",
    "subtrees",
    "tile_root",
    "tile_width",
    "verify_consistency",
    "verify_inclusion",
]
