"""custodial sentence for the first proven reoffence (reoffending_cohort spec v3)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 16:25:00

The lead re-chains this after the other branches' migrations at merge (down_revision).
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reoffending_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('custodial_first', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reoffending_record', schema=None) as batch_op:
        batch_op.drop_column('custodial_first')
