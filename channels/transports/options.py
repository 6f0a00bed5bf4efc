"""Options of the file-based channels' targets (folder, WebDAV, SFTP) and their offline checks.

``FileOptions`` is the base of a file-based kind's config block. This module imports no
transport, so loading a config stays cheap.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from publisher.contract import ChannelOptions, Timeout, env_secret_problem, secret_file_problem
from publisher.errors import Rejected
from publisher.models import Problem


@dataclass(frozen=True)
class Modes:
    """Permissions of everything that goes public, whatever the umask: a web server running as
    another user must read it. Staging stays owner-only until then."""

    dir: int = 0o755
    file: int = 0o644
    group: int | None = None  # gid


def _public_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("public_url must start with https:// (or http://)")
    return value if value.endswith("/") else value + "/"


#: the address at which a target is served, e.g. https://www.example.gov.hk/videos/ (ends in "/")
PublicUrl = Annotated[str, AfterValidator(_public_url)]


class TargetOptions(BaseModel):
    """Where files go."""

    model_config = ConfigDict(extra="forbid")

    #: a folder path, webdav(s)://host[:port]/path or sftp://user@host[:port]/path
    target: str
    username: str | None = None  # WebDAV user (SFTP takes it from the URL)
    password_env: str | None = None  # environment variable holding the WebDAV/SFTP password
    key_file: str | None = None  # SFTP private key (mode 0600)
    known_hosts: str | None = None  # SFTP known_hosts file; host keys are never auto-accepted
    ca_bundle: str | None = None  # extra CA file to trust for webdavs://
    #: staging area outside the public tree (same filesystem/server); default .publisher-staging/
    staging: str | None = None
    #: modes of what goes public, as octal text (default "0755" for folders, "0644" for files)
    dir_mode: str | None = None
    file_mode: str | None = None
    #: group given to what goes public, for a web server that reads through a group: a name or
    #: gid on a folder target, a gid over SFTP
    group: str | None = None
    timeout: Timeout = 30.0

    @property
    def scheme(self) -> str:
        s = urlsplit(self.target).scheme.lower()
        return s if s in ("webdav", "webdavs", "sftp") else "folder"

    @property
    def modes(self) -> Modes:
        return Modes(dir=int(self.dir_mode, 8) if self.dir_mode else Modes.dir,
                     file=int(self.file_mode, 8) if self.file_mode else Modes.file)

    @field_validator("dir_mode", "file_mode")
    @classmethod
    def _mode(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"0?[0-7]{3}", value.strip()):
            raise ValueError(f"{value!r} is not a mode; write it as octal text, e.g. \"0755\"")
        mode = int(value, 8)
        folder = info.field_name == "dir_mode"
        needed = 0o700 if folder else 0o600
        if mode & needed != needed:
            raise ValueError(f"{value} takes publisher's own access away; the owner digit must be "
                             f"{'7' if folder else '6 or 7'}")
        if mode & 0o002:
            raise ValueError(f"{value} lets every user on the server write; drop the last digit's 2")
        return f"{mode:04o}"

    @model_validator(mode="after")
    def _check(self) -> TargetOptions:
        scheme = urlsplit(self.target).scheme.lower()
        if "://" in self.target and scheme not in ("webdav", "webdavs", "sftp"):
            raise ValueError(f"target {self.target!r}: use a folder path, webdav://, webdavs:// or sftp://")
        if self.scheme != "folder":
            parts = urlsplit(self.target)
            if not parts.hostname:
                raise ValueError(f"target {self.target!r} has no host name")
            if parts.password is not None:
                raise ValueError("target must not contain a password; name an environment variable "
                                 "in password_env instead")
            if self.staging and not self.staging.startswith("/"):
                raise ValueError("staging must be an absolute path on the same server, e.g. /private/staging")
        if self.scheme in ("webdav", "webdavs") and self.password_env and not self.username:
            raise ValueError("password_env is set but username is not")
        if self.scheme in ("webdav", "webdavs") and (self.dir_mode or self.file_mode or self.group):
            raise ValueError("a WebDAV server decides file modes and groups itself; remove dir_mode, "
                             "file_mode and group")
        if self.scheme == "sftp" and self.group and not self.group.isdigit():
            raise ValueError(f"over SFTP give group as a number (the gid on the server, e.g. \"33\" for "
                             f"www-data on Debian), not {self.group!r}")
        if self.scheme == "sftp":
            if not urlsplit(self.target).username:
                raise ValueError("sftp target needs a user: sftp://user@host[:port]/path")
            if not (self.key_file or self.password_env):
                raise ValueError("sftp target needs key_file (or password_env)")
        return self


class FileOptions(ChannelOptions, TargetOptions):
    """The site-config block of a kind that publishes files to a target."""


def target_problems(options: TargetOptions, config_dir: Path, channel: str) -> list[Problem]:
    """Offline checks: the local files the options name exist, a folder target can be written
    (made if missing), and a group name exists. Nothing is written."""
    where = f"channel {channel}"
    problems = []
    for field in ("known_hosts", "ca_bundle"):
        value = getattr(options, field)
        path = local_path(value, config_dir) if value else None
        if path is not None and not path.is_file():
            problems.append(Problem(file=where, field=field, message=f"{path} does not exist",
                                    fix=f"create it or correct {field}"))
    if options.scheme == "sftp" and not options.known_hosts:
        default = Path.home() / ".ssh/known_hosts"
        if not default.is_file():
            problems.append(Problem(file=where, field="known_hosts",
                                    message=f"{default} (used when known_hosts is not set) does not exist",
                                    fix="set known_hosts to a file holding the server's host key"))
    if options.scheme == "folder":
        for field in ("target", "staging"):
            value = getattr(options, field)
            found = folder_problem(local_path(value, config_dir)) if value else None
            if found:
                problems.append(Problem(file=where, field=field, message=found[0], fix=found[1]))
        if options.group:
            try:
                local_gid(options.group)
            except Rejected as e:
                problems.append(Problem(file=where, field="group", message=str(e),
                                        fix="create the group or correct group"))
    return problems


def folder_problem(path: Path) -> tuple[str, str] | None:
    """Why publisher could not write into the folder ``path`` (made when missing): (what, fix)."""
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder", "point it at a folder"
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{path} is inside {existing}, which is a file", "point it at a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        user = pwd.getpwuid(os.geteuid()).pw_name
        return (f"{existing} is not writable by {user}, who runs publisher",
                f"give {user} write access to {existing}, or choose another folder")
    return None


def unreachable_folder(options: TargetOptions, config_dir: Path) -> Path | None:
    """The first existing folder at or above a folder target that other users cannot pass through
    (the web server's workers and the screens' file server are not the user who runs publisher);
    what publisher makes itself gets public modes at go-live, what exists already it leaves alone."""
    if options.scheme != "folder" or not options.target:
        return None
    path = local_path(options.target, config_dir).absolute()
    through = 0o011 if options.group else 0o001
    for folder in (path, *path.parents):
        if folder.is_dir() and not folder.stat().st_mode & through:
            return folder
    return None


def local_path(value: str, config_dir: Path) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else config_dir / p


def local_gid(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise Rejected(f"there is no group {group!r} on this machine") from None


def target_credential_problems(options: TargetOptions, config_dir: Path, channel: str) -> list[Problem]:
    """The password variable is set and the key file exists, readable by its owner only, where
    the options name them."""
    found = []
    if options.password_env:
        found.append(env_secret_problem(options.password_env, channel, "password_env",
                                        f"the password of {options.username or 'the account'}"))
    if options.key_file:
        found.append(secret_file_problem(local_path(options.key_file, config_dir), channel, "key_file",
                                         "create the SFTP private key (mode 0600), or correct key_file"))
    return [p for p in found if p is not None]
