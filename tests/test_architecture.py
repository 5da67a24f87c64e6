"""The layering of ``docs/architecture.md`` holds: every ``import-linter`` contract of
``pyproject.toml`` is kept (the same check CI runs as ``lint-imports``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_import_contract_is_kept():
    pytest.importorskip("importlinter", reason="import-linter is a dev extra")
    command = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    proc = subprocess.run(
        [command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout
