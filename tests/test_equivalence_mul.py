# amaranth: UnusedElaboratable=no
"""Elementwise Mul layers (VMUL: VADD with ``mul``; per-channel broadcast with
``broadcast_b``) through the compiler, the cycle model and the RTL top (Amaranth simulator and
Verilator), bit- and cycle-exact against the int8 golden model (:func:`accel.numerics.qmul`).
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config, executor, numerics, ptq, synthetic
from accel import graph as g
from accel.compiler import compile
from accel.isa import ComputeMode, Engine
from tests.test_equivalence_rtl import SETUPS, check


def mul_qnet(seed: int, c: int, hw: tuple[int, int], broadcast: bool, gate: bool):
    """input -> conv a; input -> conv b [-> global pool] [-> sigmoid]; a * b -> output: a
    same-shape product, or the squeeze-and-excitation gate ``a * sigmoid(pool(b))``."""
    net = g.Network("mul")
    x = net.add("input", g.Input((c, *hw)))
    a = net.add("a", g.Conv2d(c, c, 3, padding=1), [x])
    b = net.add("b", g.Conv2d(c, c, 1), [x])
    if broadcast:
        b = net.add("squeeze", g.GlobalAvgPool(), [b])
    if gate:
        b = net.add("gate", g.Pointwise("sigmoid"), [b])
    net.add("mul", g.Mul(), [a, b])
    return ptq.quantize(net, seed=seed)


MUL_LAYERS = {
    "same shape, several channel tiles": (1, 12, (4, 5), False, False),
    "squeeze-and-excitation gate": (2, 10, (5, 6), True, True),
    "broadcast without a gate": (3, 5, (3, 3), True, False),
}


def test_mul_int8_layer_is_qmul_within_one_lsb_of_the_float_product():
    """The int8 layer is qmul of its int8 inputs with the factor s_a * s_b / s_y, and within
    1 LSB of the float product of its dequantised inputs (docs/numerics.md)."""
    qnet = mul_qnet(*MUL_LAYERS["squeeze-and-excitation gate"])
    values = executor.trace_network(qnet, synthetic.random_int8_inputs(qnet))
    ta, tb, ty = (qnet.tensors[n] for n in ("a", "gate", "mul"))
    m, sh = numerics.quantize_multiplier(ta.scale * tb.scale / ty.scale)
    assert (qnet.layers["mul"].multiplier, qnet.layers["mul"].shift) == (m, sh)
    a, b, y = values["a"], values["gate"], values["mul"]
    assert b.shape == (1, 10, 1, 1) and y.shape == a.shape
    want = numerics.qmul(
        a, b, ta.zero_point, tb.zero_point, multiplier=m, shift=sh, out_zero_point=ty.zero_point
    )
    np.testing.assert_array_equal(y, want)
    real = ta.dequantize(a) * tb.dequantize(b)
    ideal = np.clip(np.round(real / ty.scale) + ty.zero_point, -128, 127)
    assert np.abs(y.astype(np.int64) - ideal).max() <= 1
    assert len(np.unique(y)) > 10


def test_graph_mul_rejects_other_broadcasts():
    net = g.Network("bad")
    x = net.add("x", g.Input((4, 3, 3)))
    y = net.add("y", g.Input((4, 3, 1)))
    with pytest.raises(ValueError, match=r"Mul takes one shape, or \(C, H, W\) and \(C, 1, 1\)"):
        net.add("mul", g.Mul(), [x, y])


@pytest.mark.parametrize(("config", "backend"), SETUPS)
@pytest.mark.parametrize("name", list(MUL_LAYERS))
def test_mul_layer_bit_and_cycle_exact(name, config, backend):
    qnet = mul_qnet(*MUL_LAYERS[name])
    program = compile(qnet, config)
    vmul = [c for c in program.streams[Engine.COMPUTE] if c.mode == ComputeMode.VADD and c.mul]
    assert vmul and all(c.broadcast_b == MUL_LAYERS[name][3] for c in vmul)
    inputs = synthetic.random_int8_inputs(qnet)
    expected = executor.run_network(qnet, inputs)
    assert set(expected) == {"mul"}
    check(program, program.make_image(inputs), expected, backend)


@pytest.mark.parametrize("preset", ["tiny", "edge"])
@pytest.mark.parametrize("name", list(MUL_LAYERS))
def test_mul_fast_mode_timing_equals_trace_mode_and_the_golden_model(name, preset):
    qnet = mul_qnet(*MUL_LAYERS[name])
    program = compile(qnet, config.preset(preset))
    inputs = synthetic.random_int8_inputs(qnet)
    image = program.make_image(inputs)
    fast = sim.run(program, image)
    trace = sim.run(program, image, mode="trace")
    assert trace.instruction_times() == fast.instruction_times()
    assert trace.total_cycles == fast.total_cycles
    expected = executor.run_network(qnet, inputs)["mul"]
    for result in (fast, trace):
        np.testing.assert_array_equal(result.outputs["mul"], expected, strict=True)


@pytest.mark.parametrize("name", list(MUL_LAYERS))
def test_mul_batch_of_three_in_one_program_equals_the_golden_model(name):
    qnet = mul_qnet(*MUL_LAYERS[name])
    program = compile(qnet, config.preset("tiny"), batch=3)
    rng = np.random.default_rng(len(name))
    shape = (3, *qnet.network.shape("input"))
    inputs = {"input": rng.integers(-128, 128, shape, dtype=np.int8)}
    result = sim.run(program, program.make_image(inputs))
    want = executor.run_network(qnet, inputs)["mul"]
    assert len({bytes(want[i]) for i in range(3)}) == 3  # three different images
    np.testing.assert_array_equal(result.outputs["mul"].reshape(want.shape), want, strict=True)
