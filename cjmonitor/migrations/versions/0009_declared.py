"""declared local services (register): their specs; KPI values that are not proportions (median days, volumes)

Declared returns are stored in one table per declared return type, ``declared_<type>``, created from the
spec when the service is saved (``contracts.records.ensure_table``), not here.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 16:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'declared_service',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('return_type', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column('spec', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('return_type'),
    )
    with op.batch_alter_table('kpi_value', schema=None) as batch_op:
        # proportion (numerator / denominator), median (value = median days of numerator rows with both dates,
        # denominator = rows in the population), count (value = numerator = rows counted, denominator = months)
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False,
                                      server_default='proportion'))
        batch_op.add_column(sa.Column('ci_low', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('ci_high', sa.Float(), nullable=True))
    with op.batch_alter_table('judgement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False,
                                      server_default='proportion'))


def downgrade() -> None:
    with op.batch_alter_table('judgement', schema=None) as batch_op:
        batch_op.drop_column('kind')
    with op.batch_alter_table('kpi_value', schema=None) as batch_op:
        batch_op.drop_column('ci_high')
        batch_op.drop_column('ci_low')
        batch_op.drop_column('kind')
    op.drop_table('declared_service')
