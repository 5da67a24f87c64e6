"""Fuzzing the inputs a user hands the command line: random damage to a valid ONNX file,
random edits of a config TOML, random SCALE-Sim topology rows. Every case ends in a correct
run (exit 0) or one clean line ``accel: error: ...`` (exit 2): never a traceback, never an
internal error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from accel import config
from accel.cli import main

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def cnn() -> bytes:
    """Conv + Relu + MaxPool + Flatten + Gemm, float, opset 13."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
        numpy_helper.from_array(rng.standard_normal((5, 16)).astype(np.float32), "fw"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "fuzz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()


VALID_ONNX = cnn()


def check_clean(capsys, args: list[str]) -> int:
    status = main(args)
    _out, err = capsys.readouterr()
    assert status in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    if status == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("accel: error: "), err
        assert "codec can't decode" not in err, err  # decoding errors must name the file
    return status


def test_the_valid_model_runs(capsys, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(VALID_ONNX)
    assert check_clean(capsys, ["simulate", str(path), "--preset", "tiny", "-q"]) == 0


@FUZZ
@given(
    cut=st.integers(0, len(VALID_ONNX)),
    flips=st.lists(st.tuples(st.integers(0, len(VALID_ONNX) - 1), st.integers(1, 255)), max_size=6),
    tail=st.binary(max_size=16),
)
@example(cut=898, flips=[(118, 215)], tail=b"")  # the checker's message spans three lines
def test_damaged_onnx_files(capsys, tmp_path, cut, flips, tail):
    data = bytearray(VALID_ONNX)
    for position, mask in flips:
        data[position] ^= mask
    path = tmp_path / "m.onnx"
    path.write_bytes(bytes(data[:cut]) + tail)
    if check_clean(capsys, ["summary", str(path)]) == 0:
        check_clean(capsys, ["simulate", str(path), "--preset", "tiny", "--cycles-only", "-q"])


VALUES = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
    st.sampled_from(["ws", "os", "", "[1, 2]", "{}"]),
)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, str) and value[:1] in "[{" and value:
        return value
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 200), st.one_of(VALUES, st.none(), st.just("unknown_key"))),
        min_size=1,
        max_size=4,
    )
)
def test_edited_config_files(capsys, tmp_path, edits):
    lines = config.preset("tiny").to_toml().splitlines()
    keyed = [i for i, line in enumerate(lines) if " = " in line]
    for index, value in edits:
        i = keyed[index % len(keyed)]
        key = lines[i].split(" = ")[0]
        if value is None:
            lines[i] = ""
        elif value == "unknown_key":
            lines[i] = f"{key}_typo = 1"
        else:
            lines[i] = f"{key} = {toml_value(value)}"
    path = tmp_path / "c.toml"
    path.write_text("\n".join(lines) + "\n")
    if check_clean(capsys, ["config", "--config", str(path)]) == 0:
        check_clean(capsys, ["simulate", "tinyconv", "--config", str(path), "--cycles-only", "-q"])


FIELD = st.one_of(st.integers(-2, 12).map(str), st.sampled_from(["", "x", "1.5", " 3", "0x4"]))


@FUZZ
@given(
    rows=st.lists(
        st.tuples(st.text("abc_", min_size=0, max_size=4), st.lists(FIELD, min_size=5, max_size=9)),
        min_size=1,
        max_size=4,
    ),
    trailing_comma=st.booleans(),
)
def test_random_topology_rows(capsys, tmp_path, rows, trailing_comma):
    header = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
    header += "Num Filter, Strides,"
    body = [",".join([name, *fields]) + ("," if trailing_comma else "") for name, fields in rows]
    path = tmp_path / "topology.csv"
    path.write_text("\n".join([header, *body]) + "\n")
    if check_clean(capsys, ["summary", str(path)]) == 0:
        check_clean(capsys, ["simulate", str(path), "--preset", "tiny", "--cycles-only", "-q"])


@pytest.mark.parametrize("payload", [b"", b"\x00" * 64, b"ACCELPRG" + b"\xff" * 80])
def test_damaged_program_files(capsys, tmp_path, payload):
    path = tmp_path / "p.bin"
    path.write_bytes(payload)
    assert check_clean(capsys, ["simulate", str(path)]) == 2
