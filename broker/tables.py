"""Every table of the schema, for what needs them all: the runtime, Alembic, the schema test.

Importing a model module registers its tables with `SQLModel.metadata`. This sits beside the
composition root (`broker.runtime`), above every package it names, so that `broker.db` (engine and
sessions only) stays below the domain packages that use it.
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
    import broker.webhooks.models  # noqa: F401
    import vault.models  # noqa: F401
