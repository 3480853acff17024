"""Alembic migrations, packaged so `consentry migrate` finds them wherever Consentry is installed."""
