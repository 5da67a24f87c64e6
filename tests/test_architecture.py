"""The layering of ``docs/architecture.md`` holds: every ``import-linter`` contract of
``pyproject.toml`` is kept (the same check CI runs as ``lint-imports``)."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import accel

ROOT = Path(__file__).resolve().parent.parent


def test_every_import_contract_is_kept():
    pytest.importorskip("importlinter", reason="import-linter is a dev extra")
    command = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    proc = subprocess.run(
        [command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_every_accel_module_has_a_layer():
    """A module missing from the layers contract would escape it: list every one."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    listed = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    modules = {m.name for m in pkgutil.iter_modules(accel.__path__)}
    assert modules == listed
