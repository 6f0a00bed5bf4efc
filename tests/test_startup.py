"""Start-up: `publisher --help` loads only the command line (no store, engine, adapter, Google client,
broker or rich help renderer)."""

from __future__ import annotations

import json
import subprocess
import sys

HELP = """
import json, sys
from typer.testing import CliRunner
from publisher.cli import app
result = CliRunner().invoke(app, ["--help"])
print(json.dumps({"code": result.exit_code, "modules": sorted(sys.modules)}))
"""
NEVER_FOR_HELP = {"sqlalchemy", "alembic", "googleapiclient", "google", "dramatiq", "redis", "channels",
                  "jinja2", "starlette", "apprise", "opencc", "ruamel", "markdown_it"}


def test_help_imports_only_the_command_line() -> None:
    out = subprocess.run([sys.executable, "-c", HELP], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    assert found["code"] == 0
    modules = set(found["modules"])
    assert not NEVER_FOR_HELP & {m.split(".")[0] for m in modules}
    assert "typer.rich_utils" not in modules and "publisher.engine.engine" not in modules
