"""Alembic revisions of the warehouse schema, oldest first (``0001_baseline`` is the schema before migrations)."""
