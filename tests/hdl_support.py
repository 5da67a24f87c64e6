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
