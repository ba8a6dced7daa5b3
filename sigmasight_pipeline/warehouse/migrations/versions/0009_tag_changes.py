"""Tags and strategies (books.md, "Tags and strategies"): the ``tag_changes`` table.

One new table, created only when missing (a warehouse written by ``metadata.create_all`` of this code before it
had an ``alembic_version`` adopts the baseline, then upgrades, and already has it); nothing else changes, so
every row a warehouse holds is kept:

* ``tag_changes`` (portfolio, change_seq): the tag edits of ``sigmasight tags add|remove``, each applied by the
  ledger (engines/book.py) from the session of its effective date on.

A warehouse without tag edits computes exactly what it did before. The downgrade drops the table.

Revision ID: 0009_tag_changes
Revises: 0008_performance_attribution
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_tag_changes"
down_revision: str | Sequence[str] | None = "0008_performance_attribution"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "tag_changes"


def upgrade() -> None:
    if TABLE in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        TABLE,
        sa.Column("portfolio_id", sa.String(length=64), nullable=False),
        sa.Column("change_seq", sa.Integer(), nullable=False),
        sa.Column("position_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=6), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('add', 'remove')", name="ck_tag_changes_action"),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.portfolio_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("portfolio_id", "change_seq"),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
