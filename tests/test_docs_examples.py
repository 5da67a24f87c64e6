"""The Python example of ``docs/user-guide.md`` runs as written and prints what the guide
says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "user-guide.md"


def test_the_python_pipeline_example_runs_and_prints_its_output():
    text = GUIDE.read_text()
    section = text[text.index("## From Python") :]
    code, printed = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{GUIDE}:From Python", "exec"), {})
    assert out.getvalue() == printed


def test_the_timing_page_holds_the_contract_word_for_word():
    """docs/timing.md quotes accel/timing.py's docstring, the contract; they may not drift."""
    from accel import timing

    page = (GUIDE.parent / "timing.md").read_text()
    (block,) = re.findall(r"```text\n(.*?)```", page, re.S)
    assert block.strip() == timing.__doc__.strip()
