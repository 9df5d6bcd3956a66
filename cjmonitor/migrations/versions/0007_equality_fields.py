"""equality monitoring fields (ethnicity group, care leaver) on person-level records; frequency PbR terms

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 08:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('crc_record', 'reoffending_record'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('ethnicity_group', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True))
            batch_op.add_column(sa.Column('care_leaver', sa.Boolean(), nullable=True))
    with op.batch_alter_table('payment_terms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pbr_frequency_price_gbp', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('pbr_frequency_threshold_pct', sa.Float(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('payment_terms', schema=None) as batch_op:
        batch_op.drop_column('pbr_frequency_threshold_pct')
        batch_op.drop_column('pbr_frequency_price_gbp')
    for table in ('crc_record', 'reoffending_record'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('care_leaver')
            batch_op.drop_column('ethnicity_group')
