"""The store's schema: Alembic migrations, applied when a store is opened.

A store made by publisher 0.1 (before migrations) has the tables of revision 0001 and no
``alembic_version``: it is stamped 0001 and upgraded in place, every record kept. Opening a store
that is already at the head costs one query; Alembic itself is imported only to upgrade.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

HEAD = "0004"
FOLDER = Path(__file__).with_name("migrations")


def current(engine: Engine) -> str | None:
    """The schema revision, "0001" for a store made before migrations, None for an empty one."""
    with engine.connect() as conn:
        try:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar() or "") or None
        except SQLAlchemyError:
            conn.rollback()
            return "0001" if inspect(conn).has_table("releases") else None


def upgrade(engine: Engine) -> None:
    found = current(engine)
    if found == HEAD:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            if found == "0001" and not inspect(conn).has_table("alembic_version"):
                command.stamp(config, "0001")
            command.upgrade(config, "head")
    except SQLAlchemyError:
        if current(engine) != HEAD:  # not another process upgrading the same store meanwhile
            raise
