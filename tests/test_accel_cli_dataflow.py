"""``--dataflow`` on the CLI: it overrides the config's ``array.dataflow`` wherever a config is
named, ``accel sweep --dataflow ws,os`` sweeps it, and a dataflow the machine does not have
is one error line, exit status 2, nothing written."""

from __future__ import annotations

import csv
import json

import pytest

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


@pytest.mark.parametrize(
    "command",
    [
        ["simulate", "tinynet", "--preset", "tiny", "--dataflow", "is", "-o", "{out}"],
        ["compile", "tinynet", "--preset", "tiny", "--dataflow", "is", "-o", "{out}/p.bin"],
        ["report", "tinynet", "--preset", "tiny", "--dataflow", "is", "-o", "{out}"],
        ["sweep", "tinynet", "--preset", "tiny", "--dataflow", "ws,is", "-o", "{out}"],
        ["config", "--preset", "tiny", "--dataflow", "is", "-o", "{out}/c.toml"],
    ],
)
def test_input_stationary_is_one_error_line_and_nothing_written(command, tmp_path, capsys):
    out = tmp_path / "out"
    args = [part.format(out=out) for part in command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == "accel: error: --dataflow is: input-stationary is not implemented yet\n"
    assert not out.exists()


def test_an_unknown_dataflow_is_named(capsys):
    assert main(["simulate", "tinynet", "--preset", "tiny", "--dataflow", "xs"]) == 2
    assert capsys.readouterr().err == "accel: error: --dataflow must be one of ws, os, not 'xs'\n"
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
