"""The site config and state store of one invocation, opened lazily (so `init` and `--help`
touch nothing); shared by the CLI and the workers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from publisher.inputs.config import SiteConfig, load_config
from publisher.store import Store, sqlite_url


@dataclass
class Context:
    config_path: Path
    state_dir: Path
    _config: SiteConfig | None = None
    _store: Store | None = None

    @property
    def config(self) -> SiteConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._store = Store(self.config.settings.store or sqlite_url(self.state_dir))
        return self._store
