"""The array's depthwise mode (``Compute.depthwise``) in the RTL, against the cycle model and
the golden model.

Random depthwise layers on ``tiny`` (4x4: kernels whose rows do not all fit one pass run as
several passes of whole kernel rows; a 5-wide kernel does not fit a row of taps and stays
on the weight-stationary path) compile to the depthwise mode, and run on the Amaranth
simulator and on Verilator with the golden model's outputs bit for bit and the model's
cycles per instruction (:func:`tests.test_equivalence_rtl.check`). The model's fast and
trace modes agree on every instruction. MobileNetV2 at 32x32 runs whole on ``tiny`` in
Verilator (about 14 s with a cached build; on 8x8 and 16x16 at 64x64 in the slow tier of
``tests/test_equivalence_verify.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import executor, synthetic
from accel.compiler import compile
from accel.isa import ComputeMode, Engine
from tests.layers import conv_qnet, conv_reference, random_input, zoo_qnet
from tests.test_equivalence_rtl import NARROW, TINY, check

#: name -> (channels, input size, kernel, stride, padding, dilation, activation); channel
#: counts that are not a multiple of the 4 columns, stride 1 and 2, padding, dilation.
LAYERS = {
    "3x3 pad 1 relu6": (8, (5, 5), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), "relu6"),
    "3x3 stride 2, 6 channels": (6, (7, 6), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), None),
    "1x3 pad 1, 5 channels": (5, (4, 6), (1, 3), (1, 1), (0, 0, 1, 1), (1, 1), "relu"),
    "3x1 stride (2, 1)": (4, (6, 5), (3, 1), (2, 1), (1, 0, 1, 0), (1, 1), None),
    "2x2 dilation 2, asymmetric pad": (7, (6, 6), (2, 2), (1, 1), (0, 1, 2, 1), (2, 2), None),
    "5x3 stride 2 pad 2, 9 channels": (9, (9, 8), (5, 3), (2, 2), (2, 2, 1, 1), (1, 1), None),
    "4x4 one tap per row, stride 1 pad 1": (3, (5, 5), (4, 4), (1, 1), (1, 2, 1, 2), (1, 1), None),
}


def depthwise_program(name: str, config):
    c, hw, kernel, stride, padding, dilation, activation = LAYERS[name]
    rng = np.random.default_rng(len(name))
    qnet = conv_qnet(
        rng, c=c, k=c, hw=hw, kernel=kernel, stride=stride, padding=padding,
        dilation=dilation, groups=c, activation=activation,
    )  # fmt: skip
    program = compile(qnet, config)
    computes = program.streams[Engine.COMPUTE]
    assert computes and all(
        i.depthwise and i.mode == ComputeMode.ARRAY and i.taps == i.taps_h * kernel[1]
        for i in computes
    ), name
    x = random_input(rng, qnet)
    return qnet, program, x


@pytest.mark.parametrize("name", list(LAYERS))
def test_depthwise_layer_model_equals_golden_and_fast_equals_trace(name):
    qnet, program, x = depthwise_program(name, TINY)
    image = program.make_image({"input": x})
    fast, trace = sim.run(program, image), sim.run(program, image, mode="trace")
    np.testing.assert_array_equal(fast.outputs["conv"], conv_reference(qnet, x), strict=True)
    np.testing.assert_array_equal(trace.outputs["conv"], fast.outputs["conv"], strict=True)
    assert trace.start == fast.start and trace.done == fast.done


SETUPS = [
    pytest.param(TINY, "amaranth", id="tiny-amaranth"),
    pytest.param(TINY, "verilator", id="tiny-verilator"),
    pytest.param(NARROW, "amaranth", id="bw3-lat7-amaranth", marks=pytest.mark.slow),
    pytest.param(NARROW, "verilator", id="bw3-lat7-verilator", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("config", "backend"), SETUPS)
@pytest.mark.parametrize("name", list(LAYERS))
def test_depthwise_layer_is_bit_and_cycle_exact_in_rtl(name, config, backend):
    qnet, program, x = depthwise_program(name, config)
    check(program, program.make_image({"input": x}), {"conv": conv_reference(qnet, x)}, backend)


def test_a_kernel_wider_than_the_array_stays_weight_stationary():
    rng = np.random.default_rng(5)
    qnet = conv_qnet(rng, c=4, k=4, hw=(6, 6), kernel=(1, 5), padding=(0, 0, 2, 2), groups=4)
    program = compile(qnet, TINY)
    assert not any(i.depthwise for i in program.streams[Engine.COMPUTE])
    assert "mode" not in program.layers[-1].mapping


def test_mobilenet_v2_reduced_is_bit_and_cycle_exact_in_verilator_on_tiny():
    qnet = zoo_qnet("mobilenet_v2", 32)
    program = compile(qnet, TINY)
    assert sum(i.depthwise for i in program.streams[Engine.COMPUTE]) > 0
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), "verilator")
