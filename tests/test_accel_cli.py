"""The accel command line: help, version, config."""

import subprocess
import sys

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
