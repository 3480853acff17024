"""The audit log: an append-only RFC 9162 (Certificate Transparency v2) Merkle tree of audit entries.

`models` holds its tables; `tree` appends entries and answers roots, inclusion and consistency proofs;
`entries` says what an entry holds and `log` records one in the transaction that caused it;
`checkpoints` signs the log's size and root as C2SP signed notes; `reader` and `schemas` answer the
auditor API, `tiles` its C2SP tlog-tiles (hash tiles and entry bundles from the stored tree);
`verify` checks the whole stored log against itself and its checkpoints.
"""
