"""The layers are enforced: import-linter's contracts in pyproject.toml hold, and they bite.

The second test copies the packages into a temporary folder, adds one forbidden import (the speech core
reaching for aiohttp) and checks that the same contracts then fail, so a green first test means something.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (deploy/install.sh --test)")


def lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--config", str(tree / "pyproject.toml"), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_contracts_are_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("server/stream/processor.py", "import aiohttp  # noqa", "The speech core imports neither"),
    ("turn/credentials.py", "import server.settings  # noqa", "turn does not import server"),
    ("server/compute/runtime.py", "import server.stream.processor  # noqa", "Layers"),
])
def test_a_forbidden_import_breaks_the_run(tmp_path, module, line, contract):
    for name in ("server", "signaling", "turn"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}\n")
    result = lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "Broken contracts" in result.stdout, result.stdout
    assert contract in result.stdout.split("Broken contracts", 1)[1], result.stdout
