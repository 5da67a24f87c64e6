"""Hostile but fair input to the command line: every bad input ends in one line ``accel:
error: ...`` naming what is wrong and exit status 2; a bug in 70 with ``--debug`` for the
traceback; Ctrl-C in 130; and no output is ever half-written or left stale."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from accel import compiler, timeline
from accel.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    """The single line of stderr, which must be an ``accel: error:`` line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("accel: error: "), err
    assert "Traceback" not in err
    return lines[0]


def conv_onnx() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """A directory of broken inputs, each named by what is wrong with it."""
    good = tmp_path / "good.onnx"
    onnx.save(conv_onnx(), good)
    data = good.read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(0).bytes(300))
    onnx.save_model(
        conv_onnx(),
        tmp_path / "external.onnx",
        save_as_external_data=True,
        location="external.data",
        size_threshold=0,
    )
    (tmp_path / "external.data").unlink()
    (tmp_path / "directory.onnx").mkdir()
    (tmp_path / "binary.csv").write_bytes(b"Layer name,IFMAP Height\n\xff\xfe\x00\x01,3,\n")
    (tmp_path / "binary.toml").write_bytes(b'name = "x"\n\xc3\x28\n')
    (tmp_path / "infinite.toml").write_text("clock_mhz = inf\n")
    (tmp_path / "huge.toml").write_text("[buffers]\ninput_bytes = 1073741824\n")
    (tmp_path / "a_file").write_text("not a directory\n")
    return {p.name: p for p in tmp_path.iterdir()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "{truncated.onnx}"], r"truncated.onnx: not an ONNX model, or a truncated"),
        (["simulate", "{noise.onnx}"], r"noise.onnx: not an ONNX model"),
        (["simulate", "{external.onnx}"], r"external.onnx: cannot read its external data"),
        (["simulate", "{directory.onnx}"], r"directory.onnx' is a directory, not a file"),
        (["summary", "{binary.csv}"], r"binary.csv' is not UTF-8 text \(byte 24 is 0xff\)"),
        (["config", "--config", "{binary.toml}"], r"binary.toml' is not UTF-8 text"),
        (["simulate", "tinyconv", "--config", "{infinite.toml}"], r"must be finite and > 0"),
        (["generate", "--config", "{huge.toml}", "-o", "{a_file}.d"], r"exceeds the maximum"),
        (["simulate", "tinyconv", "--preset", "tiny", "-o", "{a_file}"], r"is not a directory"),
        (["simulate", "tinyconv", "--preset", "tiny", "-o", "/dev/null"], r"is not a directory"),
        (
            ["simulate", "tinyconv", "-o", "{a_file}/sub"],
            r"a_file/sub: cannot write here \(Not a directory\)",
        ),
        (["compile", "tinyconv", "-o", "{directory.onnx}"], r"is a directory, not a file"),
        (["report", "tinyconv", "-o", "{a_file}"], r"report output .* is not a directory"),
        (["simulate", "{a_file}.bin"], r"program .*a_file.bin' does not exist"),
        (["summary", "x.bin"], r"x.bin is a compiled program: `accel simulate` and `accel verify`"),
        (["verify", "tinyconv"], r"verify needs --config or --preset"),
        (
            [
                "verify",
                "tinyconv",
                "--preset",
                "tiny",
                "--vcd",
                "{a_file}.vcd",
                "--vcd-window",
                "10:5",
            ],
            r"--vcd-window 10:5: need 0 <= FIRST <= LAST",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_input_is_one_line_and_exit_2(capsys, files, args, message, monkeypatch):
    def no_run(*a, **k):
        raise AssertionError("nothing may run before the inputs and outputs are checked")

    monkeypatch.setattr("sim.run", no_run)
    names = {f"{{{name}}}": str(path) for name, path in files.items()}
    argv = [arg for arg in args]
    for i, arg in enumerate(argv):
        for key, value in names.items():
            arg = arg.replace(key, value)
        argv[i] = arg
    status, out, err = run(capsys, *argv)
    assert status == 2, err
    assert out == ""
    assert re.search(message, one_error_line(err)), err


def test_a_bug_is_an_internal_error_with_exit_70(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(compiler, "compile", broken)
    status, _, err = run(capsys, "simulate", "tinyconv", "--preset", "tiny")
    assert status == 70
    assert err.strip() == (
        "accel: internal error: ZeroDivisionError: division by zero (a bug: run again with "
        "--debug for the traceback and report it)"
    )
    status, _, err = run(capsys, "--debug", "simulate", "tinyconv", "--preset", "tiny")
    assert status == 70 and "Traceback (most recent call last)" in err
    status, _, err = run(capsys, "simulate", "tinyconv", "--preset", "tiny", "--debug")
    assert status == 70 and "Traceback (most recent call last)" in err


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(compiler, "compile", interrupted)
    status, out, err = run(capsys, "simulate", "tinyconv", "--preset", "tiny")
    assert (status, out, err) == (130, "", "accel: interrupted\n")


def test_sigterm_is_one_line_exit_143_and_leaves_no_staging(tmp_path):
    """``kill`` (or ``timeout``) during ``accel generate``: the staging directory goes too."""
    out = tmp_path / "rtl"
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from accel.cli import main; sys.exit(main())",
         "generate", "--preset", "edge", "-o", str(out), "--no-lint"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(out.glob(".accel-staging-*")) and process.poll() is None:
        assert time.monotonic() < deadline, "generate never started staging its outputs"
        time.sleep(0.05)
    assert process.poll() is None, "generate finished before it could be terminated"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err) == (143, "accel: terminated\n")
    assert list(out.iterdir()) == []


def test_an_interrupted_report_leaves_the_previous_one_whole(capsys, tmp_path, monkeypatch):
    out = tmp_path / "report"
    assert run(capsys, "report", "tinyconv", "--preset", "tiny", "-o", str(out))[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "trace.json" in before

    def half_then_interrupt(path, result, program):
        Path(path).write_text('{"traceEvents": [')
        raise KeyboardInterrupt

    monkeypatch.setattr(timeline, "write_trace", half_then_interrupt)
    status, _, err = run(capsys, "report", "tinynet", "--preset", "tiny", "-o", str(out))
    assert (status, err) == (130, "accel: interrupted\n")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no staging dir left
    json.loads(before["trace.json"])


def test_a_report_without_trace_removes_the_previous_trace(capsys, tmp_path):
    out = tmp_path / "report"
    (tmp_path / "report").mkdir()
    (out / "mine.txt").write_text("a file the tool does not own")
    assert run(capsys, "report", "tinyconv", "--preset", "tiny", "-o", str(out))[0] == 0
    assert (out / "trace.json").exists()
    assert (
        run(capsys, "report", "tinyconv", "--preset", "tiny", "-o", str(out), "--no-trace")[0] == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["layers.csv", "mine.txt", "occupancy.csv", "report.html", "report.json"]


def test_a_failed_simulate_writes_nothing(capsys, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("layer 'x' (Conv2d): something the hardware cannot do")

    monkeypatch.setattr(compiler, "compile", broken)
    out = tmp_path / "sim"
    status, _, err = run(capsys, "simulate", "tinyconv", "--preset", "tiny", "-o", str(out))
    assert status == 2 and "something the hardware cannot do" in one_error_line(err)
    assert list(out.iterdir()) == []


def test_a_compiled_program_simulates_as_its_network_does(capsys, tmp_path):
    program = tmp_path / "tinynet.bin"
    assert run(capsys, "compile", "tinynet", "--preset", "tiny", "-o", str(program))[0] == 0
    status, from_file, _ = run(capsys, "simulate", str(program), "--format", "json")
    assert status == 0
    status, from_network, _ = run(
        capsys, "simulate", "tinynet", "--preset", "tiny", "--format", "json"
    )
    assert status == 0
    assert json.loads(from_file) == json.loads(from_network)
    status, _, err = run(capsys, "simulate", str(program), "--preset", "tiny")
    assert status == 2 and "carries its config and input size: drop --preset" in err
    damaged = tmp_path / "damaged.bin"
    data = bytearray(program.read_bytes())
    data[-5] ^= 0x10
    damaged.write_bytes(bytes(data))
    status, _, err = run(capsys, "simulate", str(damaged))
    assert status == 2
    corrupt = "corrupt: the CRC32 of the contents does not match the header's"
    assert one_error_line(err) == f"accel: error: {damaged}: {corrupt}"


def test_outputs_are_written_under_their_final_names_only(capsys, tmp_path):
    prog, listing, toml = tmp_path / "p.bin", tmp_path / "p.lst", tmp_path / "c.toml"
    args = ["compile", "tinyconv", "--preset", "tiny", "-o", str(prog), "--listing", str(listing)]
    assert run(capsys, *args)[0] == 0
    assert run(capsys, "config", "--preset", "tiny", "-o", str(toml))[0] == 0
    assert sorted(os.listdir(tmp_path)) == ["c.toml", "p.bin", "p.lst"]
