"""The schema of publisher 0.1: releases, publications, renditions, approvals, events."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("manifest_path", sa.Text, nullable=False),
        sa.Column("master_sha256", sa.String(64), nullable=False),
        sa.Column("hashes", sa.Text, nullable=False),
        sa.Column("master_json", sa.Text, nullable=False),
        sa.Column("release_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "renditions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("release_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("release_id", sa.String(64), nullable=False, index=True),
        sa.Column("approved_by", sa.Text, nullable=False),
        sa.Column("hashes", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("release_id", sa.String(64), nullable=False, index=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "publications",
        sa.Column("release_id", sa.String(64), sa.ForeignKey("releases.id"), primary_key=True),
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("remote_id", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("publish_at", sa.DateTime, nullable=True),
        sa.Column("retry_at", sa.DateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("journal", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_publications_state", "publications", ["state"])
    op.create_index("ix_publications_channel", "publications", ["channel"])
    op.create_index("ix_publications_updated", "publications", ["updated_at"])
