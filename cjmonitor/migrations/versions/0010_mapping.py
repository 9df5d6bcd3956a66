"""per-provider return mappings (return_mapping); the mapping a submission was read through

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:00:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# Names SQLite's reflection leaves blank, so batch mode can drop the unnamed unique constraint of 0001.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_sha_constraint() -> str:
    if op.get_bind().dialect.name == 'sqlite':
        return 'uq_submission_sha256'
    inspector = sa.inspect(op.get_bind())
    for constraint in inspector.get_unique_constraints('submission'):
        if constraint['column_names'] == ['sha256']:
            return constraint['name']
    raise RuntimeError("submission has no unique constraint on sha256 to replace")


def upgrade() -> None:
    op.create_table('return_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('return_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('mapping_json', sa.Text(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['provider.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_id', 'return_type')
    )
    with op.batch_alter_table('return_mapping', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_mapping_provider_id'), ['provider_id'], unique=False)
    old = _old_sha_constraint()
    with op.batch_alter_table('submission', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('mapping_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('mapping_json', sa.Text(), nullable=True))
        batch_op.drop_constraint(old, type_='unique')
        batch_op.create_unique_constraint('uq_submission_sha256_mapping', ['sha256', 'mapping_sha256'])


def downgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_constraint('uq_submission_sha256_mapping', type_='unique')
        batch_op.create_unique_constraint('uq_submission_sha256', ['sha256'])
        batch_op.drop_column('mapping_json')
        batch_op.drop_column('mapping_sha256')
    with op.batch_alter_table('return_mapping', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_mapping_provider_id'))
    op.drop_table('return_mapping')
