"""Lowering appends long runs of instructions as numpy columns and short ones row by row:
both give the same programs, byte for byte (``accel.compiler.emit.VECTOR_MIN`` is only a
speed threshold)."""

from __future__ import annotations

import pytest

from accel import config
from accel.compiler import compile, emit, lower_conv, lower_vector
from tests.layers import zoo_qnet
from tests.test_accel_compiler_digests import program_digest


def compiled(monkeypatch, model, size, preset, vector_min):
    for module in (emit, lower_conv, lower_vector):
        monkeypatch.setattr(module, "VECTOR_MIN", vector_min)
    return compile(zoo_qnet(model, size), config.preset(preset))


@pytest.mark.parametrize(
    ("model", "size", "preset"),
    [
        ("lenet5", None, "tiny"),  # streamed weights: a weight load per COMPUTE
        ("tinynet", None, "tiny"),
        ("mobilenet_v2", 64, "tiny"),  # grouped convs, channel-chunked inputs
        ("resnet18", 64, "edge"),  # resident weights, strided 1x1 loads
    ],
)
def test_numpy_columns_and_rows_give_the_same_program(monkeypatch, model, size, preset):
    rows = compiled(monkeypatch, model, size, preset, 1 << 30)
    columns = compiled(monkeypatch, model, size, preset, 1)
    assert program_digest(columns) == program_digest(rows)
    assert columns.streams == rows.streams
