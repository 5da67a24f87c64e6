"""``--dataflow`` on the CLI: it overrides the config's ``array.dataflow`` wherever a config is
named, ``accel sweep --dataflow ws,os`` sweeps it, and a dataflow the machine does not have
is one error line, exit status 2, nothing written."""

from __future__ import annotations

import csv
import json

from accel import config
from accel.cli import main
from accel.isa import Engine
from accel.program import Program


def simulate_json(capsys, *extra: str) -> dict:
    assert main(["simulate", "tinynet", "--preset", "tiny", "--cycles-only", "--format", "json",
                 *extra]) == 0  # fmt: skip
    return json.loads(capsys.readouterr().out)


def test_simulate_dataflow_overrides_the_preset(capsys):
    ws = simulate_json(capsys)
    os_ = simulate_json(capsys, "--dataflow", "os")
    assert config.preset("tiny").array.dataflow == "ws"  # the presets stay weight-stationary
    assert ws["total_cycles"] != os_["total_cycles"]
    assert simulate_json(capsys, "--dataflow", "ws")["total_cycles"] == ws["total_cycles"]


def test_compile_dataflow_os_sets_the_bit_and_the_config(tmp_path):
    out = tmp_path / "prog.bin"
    assert main(["compile", "tinynet", "--preset", "tiny", "--dataflow", "os", "-o", str(out)]) == 0
    program = Program.load(out)
    assert program.config.array.dataflow == "os"
    assert any(instr.os for instr in program.streams[Engine.COMPUTE])


def test_a_compiled_program_refuses_dataflow(tmp_path, capsys):
    out = tmp_path / "prog.bin"
    assert main(["compile", "tinynet", "--preset", "tiny", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["simulate", str(out), "--dataflow", "os"]) == 2
    assert "drop --dataflow" in capsys.readouterr().err


def test_compile_dataflow_is_sets_the_bit_and_the_config(tmp_path, capsys):
    out = tmp_path / "prog.bin"
    assert main(["compile", "tinynet", "--preset", "tiny", "--dataflow", "is", "-o", str(out)]) == 0
    program = Program.load(out)
    assert program.config.array.dataflow == "is"
    assert any(instr.is_ for instr in program.streams[Engine.COMPUTE])
    capsys.readouterr()
    is_ = simulate_json(capsys, "--dataflow", "is")
    assert is_["total_cycles"] != simulate_json(capsys)["total_cycles"]
    assert main(["simulate", str(out), "--cycles-only", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_cycles"] == is_["total_cycles"]


def test_config_dataflow_is_writes_it(tmp_path):
    out = tmp_path / "c.toml"
    assert main(["config", "--preset", "tiny", "--dataflow", "is", "-o", str(out)]) == 0
    assert config.load(out).array.dataflow == "is"


def test_dataflow_is_on_a_non_square_array_is_one_error_line(tmp_path, capsys):
    args = ["simulate", "tinynet", "--preset", "tiny", "--dataflow", "is", "--cols", "12"]
    status = main([*args, "--cycles-only"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert "array.dataflow = 'is' needs a square array" in err


def test_an_unknown_dataflow_is_named(capsys):
    assert main(["simulate", "tinynet", "--preset", "tiny", "--dataflow", "xs"]) == 2
    assert (
        capsys.readouterr().err == "accel: error: --dataflow must be one of ws, os, is, not 'xs'\n"
    )
    assert main(["sweep", "tinynet", "--dataflow", "os,os", "-o", "unused"]) == 2
    assert "--dataflow: os is listed twice" in capsys.readouterr().err


def test_sweep_dataflow_axis(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "tinynet", "--preset", "tiny", "--dataflow", "ws,os", "--rows", "4,8"]
    assert main([*args, "--jobs", "1", "-o", str(out), "--no-cache"]) == 0
    printed = capsys.readouterr().out
    assert "dataflow" in printed.splitlines()[1]
    with (out / "sweep.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [(r["rows"], r["dataflow"]) for r in rows] == [
        ("4", "ws"),
        ("4", "os"),
        ("8", "ws"),
        ("8", "os"),
    ]
    assert all(r["status"] == "ok" for r in rows)
    assert rows[0]["cycles"] != rows[1]["cycles"]


def test_sweep_dataflow_axis_with_input_stationary(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "tinynet", "--preset", "tiny", "--dataflow", "ws,os,is", "--jobs", "1"]
    assert main([*args, "-o", str(out), "--no-cache"]) == 0
    capsys.readouterr()
    with (out / "sweep.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [r["dataflow"] for r in rows] == ["ws", "os", "is"]
    assert all(r["status"] == "ok" for r in rows)
    assert len({r["cycles"] for r in rows}) == 3
