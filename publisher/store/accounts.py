"""Console users, API tokens and login sessions, kept in the state store.

Passwords are argon2 hashes; API tokens and session ids are random and stored only as sha256
hashes, so a copy of the store lets nobody in. Roles are cumulative: viewer < publisher <
approver < admin. A disabled user's sessions and tokens stop working at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from publisher.errors import InputError
from publisher.models import Problem
from publisher.roles import Role
from publisher.store import Store, utcnow
from publisher.store.rows import Base, UTCDateTime

USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
MIN_PASSWORD = 12




@dataclass(frozen=True)
class User:
    name: str
    role: Role
    disabled: bool = False
    created_at: datetime | None = None


class UserRow(Base):
    __tablename__ = "console_users"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text, default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TokenRow(Base):
    __tablename__ = "console_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(ForeignKey("console_users.name"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class SessionRow(Base):
    __tablename__ = "console_sessions"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("console_users.name"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _hasher() -> Any:
    from argon2 import PasswordHasher  # imported here: only the console and `user` verbs need it

    return PasswordHasher()


def check_name(name: str) -> None:
    if not re.match(USER_PATTERN, name):
        raise InputError(Problem("", "NAME", f"'{name}' is not a user name",
                                 "use letters, digits and . _ @ - (at most 128)"))


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(Problem("", "password", f"shorter than {MIN_PASSWORD} characters",
                                 "choose a longer password (a few words are easy to remember)"))


class Accounts:
    """Users, tokens and sessions over one state store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._dummy = ""
        tables = [UserRow.__table__, TokenRow.__table__, SessionRow.__table__]
        Base.metadata.create_all(store.engine, tables=tables)  # type: ignore[arg-type]

    # --- users ----------------------------------------------------------------------------
    def add_user(self, name: str, role: Role, password: str) -> User:
        check_name(name)
        check_password(password)
        with self.store.session() as s:
            if s.get(UserRow, name) is not None:
                raise InputError(Problem("", "NAME", f"user '{name}' exists",
                                         "choose another name, or disable the old user first"))
            s.add(UserRow(name=name, role=role.value, password_hash=_hasher().hash(password),
                          disabled=False, created_at=utcnow()))
        return User(name, role)

    def user(self, name: str) -> User | None:
        with self.store.session() as s:
            row = s.get(UserRow, name)
            return _user(row) if row else None

    def users(self) -> list[User]:
        with self.store.session() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]

    def disable(self, name: str) -> None:
        with self.store.session() as s:
            row = s.get(UserRow, name)
            if row is None:
                raise InputError(Problem("", "NAME", f"no user '{name}'", "see `publisher user list`"))
            row.disabled = True
            s.execute(delete(SessionRow).where(SessionRow.user == name))

    def verify_password(self, name: str, password: str) -> User | None:
        """The user when the password is right and the user is enabled; None otherwise.

        An unknown name costs the same hash check as a known one, so timing tells nothing.
        """
        from argon2.exceptions import InvalidHashError, VerificationError

        hasher = _hasher()
        with self.store.session() as s:
            row = s.get(UserRow, name)
            stored = row.password_hash if row else ""
            if row is not None and hasher.check_needs_rehash(stored):
                row.password_hash = hasher.hash(password)
        try:
            hasher.verify(stored or self._dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        return None if row is None or row.disabled else _user(row)

    def _dummy_hash(self) -> str:
        if not self._dummy:
            self._dummy = _hasher().hash(secrets.token_urlsafe(16))
        return self._dummy

    # --- API tokens -----------------------------------------------------------------------
    def new_token(self, name: str) -> str:
        """A new API token for ``name``, returned once; only its hash is kept."""
        token = "pub_" + secrets.token_urlsafe(32)
        with self.store.session() as s:
            row = s.get(UserRow, name)
            if row is None or row.disabled:
                raise InputError(Problem("", "NAME", f"no enabled user '{name}'",
                                         "see `publisher user list`"))
            s.add(TokenRow(user=name, sha256=digest(token), created_at=utcnow(), revoked=False))
        return token

    def revoke_tokens(self, name: str) -> int:
        with self.store.session() as s:
            rows = list(s.scalars(select(TokenRow).where(TokenRow.user == name, TokenRow.revoked.is_(False))))
            for row in rows:
                row.revoked = True
            return len(rows)

    def token_user(self, token: str) -> User | None:
        with self.store.session() as s:
            row = s.scalars(select(TokenRow).where(TokenRow.sha256 == digest(token))).first()
            if row is None or row.revoked:
                return None
            owner = s.get(UserRow, row.user)
            if owner is None or owner.disabled:
                return None
            row.last_used_at = utcnow()
            return _user(owner)

    # --- sessions -------------------------------------------------------------------------
    def new_session(self, name: str, hours: float) -> tuple[str, str]:
        """A new session id (for the cookie) and its CSRF token."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utcnow()
        with self.store.session() as s:
            s.execute(delete(SessionRow).where(SessionRow.expires_at < now))
            s.add(SessionRow(sha256=digest(sid), user=name, csrf=csrf, created_at=now,
                             expires_at=now + timedelta(hours=hours)))
        return sid, csrf

    def session_user(self, sid: str) -> tuple[User, str] | None:
        """The enabled user of a live session, and the session's CSRF token."""
        with self.store.session() as s:
            row = s.get(SessionRow, digest(sid))
            if row is None or row.expires_at < utcnow():
                return None
            owner = s.get(UserRow, row.user)
            if owner is None or owner.disabled:
                return None
            return _user(owner), row.csrf

    def end_session(self, sid: str) -> None:
        with self.store.session() as s:
            s.execute(delete(SessionRow).where(SessionRow.sha256 == digest(sid)))


def _user(row: UserRow) -> User:
    return User(row.name, Role(row.role), bool(row.disabled), row.created_at)
