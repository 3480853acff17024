"""The audit log: an append-only RFC 9162 (Certificate Transparency v2) Merkle tree of audit entries.

`models` holds its tables; `tree` appends entries and answers roots, inclusion and consistency proofs.
"""
