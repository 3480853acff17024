"""Every table of the broker, in one place: `SQLModel.metadata` is complete once `import_models` ran.

The engine and sessions (`broker.db`) are the foundation every layer stands on; this registry is the
opposite, it knows every domain package, so it sits beside the composition root (`broker.runtime`)
and is used by it, by Alembic's `migrations/env.py` and by the schema-drift test.
"""

from __future__ import annotations


def import_models() -> None:
    """Import every module that defines tables, so SQLModel.metadata knows the whole schema."""
    import broker.accounts.factor_models
    import broker.accounts.models
    import broker.audit.models
    import broker.consent.models
    import broker.mail.models
    import broker.oauth.models
    import broker.receipts.models
    import broker.value.models
    import broker.voice.models
    import broker.webhooks.models  # noqa: F401
    import vault.models  # noqa: F401
