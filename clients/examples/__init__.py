"""Example apps built on the SDKs in `clients/`; nothing here imports the broker or the vault."""
