"""Where the file-based kinds put files: a local folder, a WebDAV server or an SFTP server.

``open_target`` connects to the channel's target and imports only the backend its scheme needs
(``requests`` for WebDAV, ``paramiko`` for SFTP). The interface and the shared building blocks
are in ``base``, the options and their offline checks in ``options``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from channels.transports.options import Modes, TargetOptions, local_gid, local_path
from publisher.contract import env_secret, read_secret_file
from publisher.errors import ChannelError

if TYPE_CHECKING:  # the options modules import this package: it stays as light as they are
    from channels.transports.base import Target


def open_target(options: TargetOptions, *, config_dir: Path, channel: str) -> Target:
    """Connect to the channel's target. Relative local paths are relative to ``config_dir``."""

    def local(value: str) -> Path:
        return local_path(value, config_dir)

    password = env_secret(options.password_env, "password", channel) if options.password_env else None
    try:
        modes = options.modes
        if options.group:
            modes = Modes(modes.dir, modes.file, local_gid(options.group))
        if options.scheme == "folder":
            from channels.transports.folder import FolderTarget

            return FolderTarget(local(options.target),
                                local(options.staging) if options.staging else None, modes)
        if options.scheme in ("webdav", "webdavs"):
            from channels.transports.webdav import WebDAVTarget

            verify: bool | str = str(local(options.ca_bundle)) if options.ca_bundle else True
            return WebDAVTarget(options.target, username=options.username, password=password,
                                verify=verify, timeout=options.timeout, staging=options.staging)
        from channels.transports.sftp import SFTPTarget

        key = None
        if options.key_file:
            key = local(options.key_file)
            read_secret_file(key, "key_file", channel)  # refuses a key others can read
        known = local(options.known_hosts) if options.known_hosts else Path.home() / ".ssh/known_hosts"
        return SFTPTarget(options.target, key_file=key, password=password, known_hosts=known,
                          timeout=options.timeout, staging=options.staging, modes=modes)
    except ChannelError as e:
        e.channel = e.channel or channel
        raise
