"""Start-up: `publisher --help` loads only the command line (no store, engine, adapter, Google client,
broker or rich help renderer), and no command's help shows a type on a flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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


@pytest.mark.parametrize("command", [[], ["status"], ["release"], ["withdraw"], ["schedule", "cancel"],
                                     ["serve"], ["user", "add"], ["draft"]])
def test_flags_show_no_type(command: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "publisher", *command, "--help"], capture_output=True,
                         text=True, check=True, env={**os.environ, "COLUMNS": "100"})
    assert "Usage:" in out.stdout and "Show this message and exit." in out.stdout
    assert "<bool>" not in out.stdout
