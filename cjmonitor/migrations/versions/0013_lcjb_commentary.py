"""partners' commentary for the LCJB pack (office.lcjb_commentary of the register, as JSON)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 17:25:00

The lead re-chains this after the other branches' migrations at merge (down_revision).
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('office', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lcjb_commentary', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('office', schema=None) as batch_op:
        batch_op.drop_column('lcjb_commentary')
