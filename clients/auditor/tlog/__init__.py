"""The transparency-log primitive: RFC 9162 Merkle trees, C2SP signed notes and checkpoints."""
