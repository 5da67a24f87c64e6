"""Lowering appends long runs of instructions as numpy columns and short ones row by row:
both give the same programs, byte for byte (``accel.compiler.emit.VECTOR_MIN`` is only a
speed threshold); and random networks on random configs give the programs (or the errors)
of row-by-row lowering with the one-at-a-time synchroniser."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

import accel.compiler
from accel import config
from accel.compiler import CompileError, compile, emit, lower_conv, lower_vector, sync
from tests.layers import quantized, zoo_qnet
from tests.test_accel_compiler_digests import program_digest
from tests.test_sim_random_networks import configs, networks


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


def reference_compile(qnet, cfg):
    """Row by row lowering and the one-at-a-time synchroniser (the compiler as it was)."""
    with pytest.MonkeyPatch.context() as patch:
        for module in (emit, lower_conv, lower_vector):
            patch.setattr(module, "VECTOR_MIN", 1 << 30)
        patch.setattr(
            accel.compiler, "synchronise", lambda log: sync.synchronise_reference(log.ops())
        )
        return compile(qnet, cfg)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=networks(), config=configs())
def test_random_networks_give_the_reference_programs_or_its_errors(network, config):
    try:
        qnet = quantized(network)
    except ValueError:
        return  # a rescale factor the int8 arithmetic cannot represent
    try:
        expected = reference_compile(qnet, config)
    except CompileError as error:
        with pytest.raises(CompileError) as got:
            compile(qnet, config)
        assert str(got.value) == str(error)
        return
    program = compile(qnet, config)
    assert program.streams == expected.streams
    assert program_digest(program) == program_digest(expected)
