"""The site config and state store of one invocation, opened when first used (so `init` and
`--help` touch nothing); shared by the CLI, the workers and the web console."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from publisher.inputs.config import SiteConfig
    from publisher.store import Store


@dataclass
class Context:
    config_path: Path
    state_dir: Path
    _config: SiteConfig | None = None
    _store: Store | None = None

    @property
    def config(self) -> SiteConfig:
        if self._config is None:
            from publisher.inputs.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config, self.state_dir)
            record_config(self.state_dir, self.config.path)
        return self._store


CONFIG_RECORD = "last-config"  # in the state folder: the config a command used last


def recorded_config(state_dir: Path, *, present: bool = True) -> Path | None:
    """The config this state folder was last used with, if it is still there (or, with
    ``present=False``, also when it is gone: for a message that names it)."""
    try:
        path = Path((state_dir / CONFIG_RECORD).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return path if path.is_absolute() and (path.is_file() or not present) else None


def record_config(state_dir: Path, config: Path) -> None:
    if recorded_config(state_dir) != config:
        with contextlib.suppress(OSError):
            (state_dir / CONFIG_RECORD).write_text(f"{config}\n", encoding="utf-8")


def open_store(config: SiteConfig, state_dir: Path) -> Store:
    """The config's store (default: SQLite in the state folder), its schema upgraded."""
    from publisher.store import Store, sqlite_url

    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = Store(config.settings.store or sqlite_url(state_dir))
    move_quota_ledgers(state_dir, store)
    return store


def move_quota_ledgers(state_dir: Path, store: Store) -> None:
    """YouTube quota ledgers that publisher 0.1 kept in files move into the store, once (the store
    is shared by every machine of a quota pool; the files were not)."""
    folder = state_dir / "channels" / "_quota"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            spent = json.loads(path.read_text(encoding="utf-8"))

            def adopt(record: dict[str, Any], spent: Any = spent) -> None:
                if not record and isinstance(spent, dict):
                    record.update({k: spent[k] for k in ("day", "units", "uploads") if k in spent})

            store.update_account(f"youtube-quota:{path.stem}", adopt)
        path.rename(path.with_name(path.name + ".moved"))
