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
