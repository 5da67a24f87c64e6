"""The accel command line: help, version, config, simulate, report, sweep, the SCALE-Sim path."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

from accel import __version__, config
from accel.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"accel {__version__}"


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "config" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: accel" in capsys.readouterr().out


def test_config_round_trip(tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    assert main(["config", "--preset", "tiny", "-o", str(path)]) == 0
    assert config.load(path) == config.preset("tiny")
    assert main(["config", "--config", str(path)]) == 0
    assert "rows = 4" in capsys.readouterr().out


def test_bad_preset_is_an_error(capsys):
    assert main(["config", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "accel.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("resnet18", "resnet50", "mobilenet_v2", "vgg16", "tinynet"):
        assert name in out


def test_summary_table_and_json(capsys):
    import json

    assert main(["summary", "tinynet"]) == 0
    assert "conv1" in capsys.readouterr().out
    assert main(["summary", "tinynet", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["name"] == "tinynet"


def test_compile_writes_a_program_and_listing(tmp_path, capsys):
    from accel.program import Program

    out = tmp_path / "p.bin"
    listing = tmp_path / "p.lst"
    assert (
        main(["compile", "tinynet", "--preset", "tiny", "-o", str(out), "--listing", str(listing)])
        == 0
    )
    program = Program.load(out)
    assert program.network == "tinynet" and program.config == config.preset("tiny")
    assert "[COMPUTE]" in listing.read_text()


def test_simulate_json_schema(capsys, tmp_path):
    import json

    assert (
        main(["simulate", "tinynet", "--preset", "tiny", "--format", "json", "-o", str(tmp_path)])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["total_cycles"] > 0
    assert sum(layer["cycles"] for layer in doc["layers"]) == doc["total_cycles"]
    for layer in doc["layers"]:
        assert {"name", "macs", "cycles", "utilization", "stalls"} <= set(layer)
    assert {p.name for p in tmp_path.iterdir()} == {"simulate.txt", "simulate.json", "simulate.csv"}


def test_simulate_table_and_overrides(capsys):
    assert main(["simulate", "tinyconv", "--preset", "tiny", "--rows", "8", "--cols", "4"]) == 0
    out = capsys.readouterr().out
    assert "(8x4," in out and "total" in out


def test_simulate_scalesim_topology(capsys):
    from pathlib import Path

    topology = Path(__file__).parent / "data" / "scalesim" / "alexnet.csv"
    assert (
        main(["simulate", str(topology), "--preset", "edge", "--cycles-only", "--format", "csv"])
        == 0
    )
    assert "Conv1" in capsys.readouterr().out


def test_unknown_model_is_an_error(capsys):
    assert main(["simulate", "resnet19"]) == 2
    assert "unknown model 'resnet19'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Reports, timeline, progress, sweeps and the SCALE-Sim path

SCALESIM = Path(__file__).parent / "data" / "scalesim"


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_simulate_trace(tmp_path, capsys):
    import json

    path = tmp_path / "t.json"
    assert (
        main(["simulate", "tinynet", "--preset", "tiny", "--cycles-only", "--trace", str(path)])
        == 0
    )
    out, err = capsys.readouterr()
    assert f"wrote the timeline to {path}" in err
    doc = json.loads(path.read_text())
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
    assert {"LOAD", "COMPUTE", "POST", "STORE"} <= names
    total = int(out.splitlines()[-1].split()[0].replace(",", ""))
    assert doc["otherData"]["total_cycles"] == total
    assert main(["simulate", "tinynet", "--preset", "tiny", "-q", "--trace", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_trace_needs_the_accel_model(tmp_path, capsys):
    args = ["simulate", "tinynet", "--model", "scalesim", "--trace", str(tmp_path / "t.json")]
    assert main(args) == 2
    assert "--trace needs --model accel (the cycle model), not scalesim" in capsys.readouterr().err


def test_progress_only_on_a_terminal(monkeypatch, capsys):
    from accel.cli import Progress

    monkeypatch.setattr(Progress, "DELAY", 0.0)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["simulate", "tinyconv", "--preset", "tiny", "--cycles-only"]) == 0
    shown = terminal.getvalue()
    assert "\rsimulate tinyconv: compiling" in shown.replace("\x1b[K", "")
    assert "simulating" in shown and shown.endswith("\r\x1b[K")  # erased when done
    quiet = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(["simulate", "tinyconv", "--preset", "tiny", "--cycles-only", "--quiet"]) == 0
    assert quiet.getvalue() == ""
    capsys.readouterr()
    assert main(["simulate", "tinyconv", "--preset", "tiny", "--cycles-only"]) == 0
    assert capsys.readouterr().err == ""  # not a terminal


def test_progress_bar():
    from accel.cli import Progress

    terminal = FakeTerminal()
    with Progress("sweep", stream=terminal, delay=0, ticker=False) as progress:
        progress.stage("points", total=4)
        progress.update(1)
        assert "[######..................] 1/4" in progress.line()
    assert terminal.getvalue().endswith("\r\x1b[K")
    silent = FakeTerminal()
    with Progress("x", stream=silent, enabled=False) as progress:
        progress.stage("a", total=2)
        progress.update(2)
    assert silent.getvalue() == ""


def test_report_command(tmp_path, capsys):
    import csv
    import json

    out = tmp_path / "rep"
    assert main(["report", "tinynet", "--preset", "tiny", "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "report.html") in printed
    assert main(["simulate", "tinynet", "--preset", "tiny", "--format", "json"]) == 0
    simulated = json.loads(capsys.readouterr().out)
    doc = json.loads((out / "report.json").read_text())
    assert doc["summary"]["total_cycles"] == simulated["total_cycles"]
    with (out / "layers.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [int(r["cycles"]) for r in rows] == [x["cycles"] for x in simulated["layers"]]
    page = (out / "report.html").read_text()
    assert 'id="fig-roofline"' in page and "<svg" in page
    assert (out / "trace.json").exists()


def test_report_of_a_batch(tmp_path, capsys):
    """`accel report --batch 4`: the batch's figures, per batch and per image, as `accel
    simulate --batch 4` gives them, and the note on weight reuse on the page."""
    import html
    import json

    from accel import batch

    pytest.importorskip("matplotlib")
    out = tmp_path / "rep"
    args = ["tinynet", "--preset", "tiny", "--batch", "4"]
    assert main(["report", *args, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert main(["simulate", *args, "--cycles-only", "--format", "json"]) == 0
    simulated = json.loads(capsys.readouterr().out)
    doc = json.loads((out / "report.json").read_text())
    assert doc["batch"] == simulated["batch"]
    figures = doc["batch"]
    assert figures["images"] == 4 and figures["weights_resident"]
    assert doc["summary"]["total_cycles"] == figures["total_cycles"] == simulated["total_cycles"]
    assert doc["summary"]["inferences_per_second"] == pytest.approx(figures["images_per_second"])
    assert f"batch of 4 images (one program): {figures['total_cycles']:,} cycles" in printed
    page = (out / "report.html").read_text()
    assert "<title>tinynet on tiny, a batch of 4 images - accel report</title>" in page
    assert '<h2 id="batch">Batch of 4 images</h2>' in page
    assert f"cycles per image<b>{figures['cycles_per_image']:,.0f}</b>" in page
    assert f"images/s<b>{figures['images_per_second']:.1f}</b>" in page
    assert f"total cycles (batch of 4)<b>{figures['total_cycles']:,}</b>" in page
    assert f"Weight reuse: {html.escape(batch.WEIGHTS_NOTE)}." in page
    # One image: no batch section.
    assert main(["report", "tinynet", "--preset", "tiny", "-o", str(tmp_path / "one")]) == 0
    one = (tmp_path / "one" / "report.html").read_text()
    assert 'id="batch"' not in one and "batch" not in json.loads(
        (tmp_path / "one" / "report.json").read_text()
    )


def test_report_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["report", "tinynet", "--preset", "tiny", "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "matplotlib, which is not installed: pip install 'accel[report]'" in err
    assert not (tmp_path / "r").exists()


def test_sweep_command(tmp_path, capsys):
    import csv
    import json

    out = tmp_path / "sweep"
    args = ["sweep", "tinynet", "--preset", "tiny", "--rows", "4,8", "--cols", "4,8"]
    assert main([*args, "--bandwidth", "4", "--jobs", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tinynet: 4 points on tiny (2 dask workers)" in printed
    with (out / "sweep.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [(r["rows"], r["cols"], r["bandwidth"]) for r in rows] == [
        ("4", "4", "4"),
        ("4", "8", "4"),
        ("8", "4", "4"),
        ("8", "8", "4"),
    ]
    assert list(rows[0]) == [
        "network",
        "rows",
        "cols",
        "bandwidth",
        "dataflow",
        "clock_mhz",
        "batch",
        "input_bytes",
        "weight_bytes",
        "acc_bytes",
        "output_bytes",
        "param_bytes",
        "pes",
        "buffer_bytes",
        "cycles",
        "cycles_per_image",
        "utilization",
        "seconds",
        "images_per_second",
        "image_by_image",
        "pareto",
        "status",
        "error",
        "network_digest",
        "config_digest",
    ]
    assert {r["status"] for r in rows} == {"ok"} and {r["network"] for r in rows} == {"tinynet"}
    assert [int(r["pes"]) for r in rows] == [16, 32, 32, 64]
    assert {r["buffer_bytes"] for r in rows} == {str(12 * 1024)}
    assert rows[0]["pareto"] == "1"  # the fewest PEs is always on the front
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["simulate", "tinynet", "--preset", "tiny", "--rows", "8", "--format", "json"]) == 0
    simulated = json.loads(capsys.readouterr().out)
    assert int(rows[2]["cycles"]) == simulated["total_cycles"]
    assert float(rows[2]["seconds"]) == pytest.approx(simulated["seconds"], rel=1e-8)


def test_sweep_without_matplotlib_writes_the_csv(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "s"
    assert main(["sweep", "tinyconv", "--preset", "tiny", "--jobs", "1", "-o", str(out)]) == 0
    assert "skipped pareto.png" in capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"layers.csv", "sweep.csv", "sweep.json"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "4,four"], "--rows: 'four' is not an integer"),
        (["--bandwidth", "0"], "--bandwidth: values must be >= 1, got 0"),
        (["--jobs", "0"], "--jobs must be >= 1, not 0"),
        (["--rows", "64", "--cols", "64"], "sweep point rows=64 cols=64 bandwidth=4 on 'tiny'"),
    ],
)
def test_sweep_errors(tmp_path, capsys, args, message):
    assert main(["sweep", "tinyconv", "--preset", "tiny", *args, "-o", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_simulate_scalesim_compute_report(tmp_path, capsys):
    topology, cfg = SCALESIM / "Resnet18.csv", SCALESIM / "scale.cfg"
    args = ["simulate", str(topology), "--scalesim-config", str(cfg), "--model", "scalesim"]
    assert main([*args, "-o", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    written = (tmp_path / "COMPUTE_REPORT.csv").read_text()
    assert printed == written
    lines = written.splitlines()
    assert lines[0] == (
        "LayerID, Total Cycles, Stall Cycles, Overall Util %, Mapping Efficiency %, Compute Util %,"
    )
    assert len(lines) == 22
    assert lines[1].startswith("0, 121939, 0, 91.167")  # Conv1, docs/scalesim.md
    assert sum(int(line.split(", ")[1]) for line in lines[1:]) == 2519815


def test_simulate_scalesim_and_ours_side_by_side(tmp_path, capsys):
    import json

    import sim
    from accel import graph
    from accel.compiler import compile
    from accel.frontends import scalesim
    from tests.layers import quantized

    topology, cfg = SCALESIM / "Resnet18.csv", SCALESIM / "scale.cfg"
    args = ["simulate", str(topology), "--scalesim-config", str(cfg), "--model", "both"]
    assert main([*args, "--format", "json", "-o", str(tmp_path), "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = scalesim.load_topology_rows(topology)
    assert [x["layer"] for x in doc["layers"]] == [r.name for r in rows]
    report = scalesim.compute_report(rows, 32, 32)
    assert [x["scalesim_cycles"] for x in doc["layers"]] == [r["Total Cycles"] for r in report]
    for x in doc["layers"]:
        assert x["ratio"] == pytest.approx(x["accel_cycles"] / x["scalesim_cycles"])
    config = scalesim.load_config(cfg)
    net = scalesim.load_topology(topology)
    alone = graph.Network("Conv3_s")  # one layer alone, as tests/test_sim_scalesim.py runs it
    alone.add("Conv3_s.input", net.op("Conv3_s.input"))
    alone.add("Conv3_s", net.op("Conv3_s"), ["Conv3_s.input"])
    ours = sim.run(compile(quantized(alone), config), compute_outputs=False)
    assert doc["layers"][7]["accel_cycles"] == ours.total_cycles
    assert doc["total"]["scalesim_cycles"] == 2519815
    assert {p.name for p in tmp_path.iterdir()} == {
        "COMPUTE_REPORT.csv",
        "scalesim_compare.txt",
        "scalesim_compare.json",
        "scalesim_compare.csv",
    }
    table = (tmp_path / "scalesim_compare.txt").read_text()
    assert "Conv5_2b" in table and "accel/SCALE-Sim" in table


def test_scalesim_model_of_a_zoo_network(capsys):
    assert main(["simulate", "tinynet", "--preset", "tiny", "--model", "both"]) == 0
    out = capsys.readouterr().out
    assert "dw " in out and "fc " in out and "total" in out


def test_scalesim_config_excludes_preset(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "tinynet", "--preset", "tiny", "--scalesim-config", "x.cfg"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["simulate", "tinynet", "--scalesim-config", "missing.cfg"]) == 2
    assert "SCALE-Sim config 'missing.cfg' does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "0"], "array.rows must be >= 2, not 0"),
        (["--bandwidth", "0"], "dram.bandwidth must be >= 1, not 0"),
    ],
)
def test_overrides_are_checked(capsys, args, message):
    assert main(["simulate", "tinyconv", "--preset", "tiny", *args]) == 2
    assert message in capsys.readouterr().err


def test_report_output_is_a_file(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("")
    assert main(["report", "tinyconv", "--preset", "tiny", "-o", str(path)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
