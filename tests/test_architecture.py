"""The layering of ``docs/architecture.md`` holds: every ``import-linter`` contract of
``pyproject.toml`` is kept (the same check CI runs as ``lint-imports``), and the tests keep
DESIGN.md's ladder: only ``tests/test_equivalence_*`` see the model and the RTL together."""

from __future__ import annotations

import ast
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


def imported_modules(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Every module ``path`` imports (at any depth in the file), following the imports of
    other ``tests`` modules: a helper module must not smuggle ``sim`` into a block test."""
    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "tests":
                names |= {f"tests.{alias.name}" for alias in node.names}
    for name in sorted(names):
        if name.startswith("tests."):
            helper = ROOT / (name.replace(".", "/") + ".py")
            if helper.exists():
                names |= imported_modules(helper, seen)
    return names


def imports_package(path: Path, package: str) -> list[str]:
    return sorted(n for n in imported_modules(path) if n == package or n.startswith(package + "."))


@pytest.mark.parametrize(
    ("pattern", "package"), [("test_hdl_*.py", "sim"), ("test_sim_*.py", "hdl")]
)
def test_block_tests_see_only_their_side(pattern, package):
    """No ``tests/test_hdl_*.py`` imports ``sim`` and no ``tests/test_sim_*.py`` imports
    ``hdl`` (directly or through another tests module): comparisons of the two live in
    ``tests/test_equivalence_*.py``."""
    files = sorted((ROOT / "tests").glob(pattern))
    assert files
    offenders = {f.name: imports_package(f, package) for f in files}
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_the_import_check_sees_a_sim_import(tmp_path):
    (tmp_path / "test_hdl_x.py").write_text("def f():\n    from sim import trace\n")
    assert imports_package(tmp_path / "test_hdl_x.py", "sim") == ["sim"]
