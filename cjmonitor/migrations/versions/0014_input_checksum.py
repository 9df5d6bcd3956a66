"""input checksums of derived KPI months and judged series, so that unchanged ones are skipped (issue #20)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:00:00

The lead re-chains this after the other branches' migrations at merge (down_revision).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'input_checksum',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('checksum', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('step', 'scope'),
    )


def downgrade() -> None:
    op.drop_table('input_checksum')
