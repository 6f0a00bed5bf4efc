"""The service's heartbeat, who acted, records shared across processes (quota budgets), the last
run of each repeat rule, and a flag for releases with repeat rules."""

import re

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "service_heartbeats",
        sa.Column("instance", sa.String(128), primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("poll_seconds", sa.Float, nullable=False),
    )
    op.create_table(
        "account_state",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "repeat_runs",
        sa.Column("release_id", sa.String(64), primary_key=True),
        sa.Column("rule", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("actor", sa.String(128), nullable=False, server_default=""))
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("repeats", sa.Boolean, nullable=False, server_default=sa.false()))
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE releases SET repeats = :yes WHERE release_json LIKE :rule"),
                 {"yes": True, "rule": '%"repeat":[{%'})
    # 0.1 found a rule's last run by reading the event log ("rule N: ..."); keep those times
    last: dict[tuple[str, int], object] = {}
    rows = bind.execute(sa.text("SELECT release_id, message, at FROM events "
                                "WHERE action = 'repeat' ORDER BY id"))
    for release_id, message, at in rows:
        m = re.match(r"rule (\d+):", message or "")
        if m:
            last[(release_id, int(m.group(1)))] = at
    for (release_id, rule), at in last.items():
        bind.execute(sa.text("INSERT INTO repeat_runs (release_id, rule, at) VALUES (:r, :n, :at)"),
                     {"r": release_id, "n": rule, "at": at})
