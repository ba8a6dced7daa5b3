"""The warehouse's Alembic environment (``env.py``) and revisions (``versions/``); see ``warehouse/migrate.py``."""
