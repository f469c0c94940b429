"""EDGE networking: security groups and their rules, instance membership, public addresses.

Instances recorded before this revision named their groups in ``security_groups_json``
(free-form names, never checked). Each account that has instances gets its groups made
here (ids recorded as names count as ``default``), ``default`` with AWS's default rules (members talk to each other, everything out),
others with egress only, and its instances become members of them; the column goes.

Revision ID: 0006_edge
Revises: 0005_console_sessions
Create Date: 2026-12-05
"""
import datetime as dt
import json
import secrets

from alembic import op
import sqlalchemy as sa


revision = '0006_edge'
down_revision = '0005_console_sessions'
branch_labels = None
depends_on = None


def _id(prefix: str) -> str:
    """An id as eucalite.ids.resource_id makes it (a migration does not import the app)."""
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def upgrade() -> None:
    # Read the old names and drop their column first: dropping a column rebuilds the
    # instances table, and with foreign keys on that would cascade to the memberships.
    named = op.get_bind().execute(
        sa.text("SELECT id, owner_id, security_groups_json FROM instances")).fetchall()
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('security_groups_json')
    groups = op.create_table('security_groups',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('owner_id', 'name')
    )
    rules = op.create_table('security_group_rules',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('group_id', sa.String(length=32), nullable=False),
    sa.Column('egress', sa.Boolean(), nullable=False),
    sa.Column('protocol', sa.String(length=8), nullable=False),
    sa.Column('from_port', sa.Integer(), nullable=True),
    sa.Column('to_port', sa.Integer(), nullable=True),
    sa.Column('cidr', sa.String(length=64), nullable=True),
    sa.Column('peer_group_id', sa.String(length=32), nullable=True),
    sa.Column('peer_owner_id', sa.String(length=32), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['security_groups.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_group_rules_group_id'), ['group_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_security_group_rules_peer_group_id'),
                              ['peer_group_id'], unique=False)
    members = op.create_table('instance_security_groups',
    sa.Column('instance_id', sa.String(length=32), nullable=False),
    sa.Column('group_id', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['security_groups.id']),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('instance_id', 'group_id')
    )
    with op.batch_alter_table('instance_security_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instance_security_groups_group_id'), ['group_id'],
                              unique=False)
    op.create_table('addresses',
    sa.Column('public_ip', sa.String(length=45), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=True),
    sa.Column('domain', sa.String(length=16), nullable=False),
    sa.Column('allocation_id', sa.String(length=32), nullable=True),
    sa.Column('association_id', sa.String(length=32), nullable=True),
    sa.Column('instance_id', sa.String(length=32), nullable=True),
    sa.Column('allocated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id']),
    sa.PrimaryKeyConstraint('public_ip'),
    sa.UniqueConstraint('allocation_id'),
    sa.UniqueConstraint('association_id')
    )
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addresses_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_addresses_instance_id'), ['instance_id'],
                              unique=False)
    _migrate_named_groups(named, groups, rules, members)


def _migrate_named_groups(named, groups, rules, members) -> None:
    """Make the groups that recorded instances (*named*: id, owner, names) name, and
    their memberships."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    made: dict[tuple[str, str], str] = {}
    for instance_id, owner_id, names_json in named:
        # The old adapter recorded SecurityGroupId values as names; no such group existed,
        # so those instances were in the default group.
        names = [("default" if name.startswith("sg-") else name)
                 for name in (json.loads(names_json) if names_json else [])]
        for position, name in enumerate(dict.fromkeys(names or ["default"])):
            key = (owner_id, name)
            if key not in made:
                made[key] = group_id = _id("sg")
                op.bulk_insert(groups, [{"id": group_id, "owner_id": owner_id, "name": name,
                                         "description": ("default group" if name == "default"
                                                         else name), "created": now}])
                op.bulk_insert(rules, _rules(group_id, owner_id, name, now))
            op.bulk_insert(members, [{"instance_id": instance_id, "group_id": made[key],
                                      "position": position}])


def _rules(group_id: str, owner_id: str, name: str, now: dt.datetime) -> list[dict]:
    """The rules a group starts with (as eucalite.compute.secrules.default_rules makes
    them): egress everything; for ``default`` also ingress everything from itself."""
    rule = {"from_port": None, "to_port": None, "protocol": "-1", "description": None,
            "created": now, "group_id": group_id}
    made = [dict(rule, id=_id("sgr"), egress=True, cidr="0.0.0.0/0", peer_group_id=None,
                 peer_owner_id=None)]
    if name == "default":
        made.insert(0, dict(rule, id=_id("sgr"), egress=False, cidr=None,
                            peer_group_id=group_id, peer_owner_id=owner_id))
    return made


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('security_groups_json', sa.Text(), nullable=True))
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_addresses_instance_id'))
        batch_op.drop_index(batch_op.f('ix_addresses_owner_id'))
    op.drop_table('addresses')
    with op.batch_alter_table('instance_security_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instance_security_groups_group_id'))
    op.drop_table('instance_security_groups')
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_group_rules_peer_group_id'))
        batch_op.drop_index(batch_op.f('ix_security_group_rules_group_id'))
    op.drop_table('security_group_rules')
    op.drop_table('security_groups')
