"""criminal-justice system measures (cjs_system_measures return, issue #19)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 16:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'system_measure_value',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('area_code', sqlmodel.sql.sqltypes.AutoString(length=9), nullable=False),
        sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column('period_type', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column('agency', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('measure', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column('breakdown', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('group', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('numerator', sa.Float(), nullable=True),
        sa.Column('denominator', sa.Float(), nullable=True),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('loaded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['area_code'], ['area.code']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('area_code', 'period', 'agency', 'measure', 'breakdown', 'group'),
    )
    with op.batch_alter_table('system_measure_value', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_system_measure_value_area_code'), ['area_code'], unique=False)
        batch_op.create_index('ix_system_measure_series', ['agency', 'measure', 'period'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('system_measure_value', schema=None) as batch_op:
        batch_op.drop_index('ix_system_measure_series')
        batch_op.drop_index(batch_op.f('ix_system_measure_value_area_code'))
    op.drop_table('system_measure_value')
