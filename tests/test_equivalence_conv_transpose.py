"""Transposed convolutions on the RTL top against the cycle model and the golden model.

A ConvTranspose2d compiles to existing instructions (one stride-1 convolution per output
phase, stored with strided STOREs), so the RTL runs it unchanged: its outputs equal the
int8 golden model's bit for bit and every instruction's start and done cycle equals the
model's, in the Amaranth simulator and in Verilator (:func:`tests.test_equivalence_rtl.check`).
"""

from __future__ import annotations

import pytest

from accel import executor, graph, synthetic
from accel.compiler import compile
from tests.layers import quantized
from tests.test_equivalence_rtl import NARROW, TINY, check, zoo_check

#: name -> (input shape, layer)
LAYERS = {
    "3x3 stride 2 pad 1 output_padding 1 relu": (
        (4, 4, 4),
        graph.ConvTranspose2d(4, 4, 3, 2, 1, 1, activation="relu"),
    ),
    "2x2 stride 2 (U-Net)": ((8, 3, 3), graph.ConvTranspose2d(8, 4, 2, 2)),
    "stride 3 kernel 2, bias-only phases": ((4, 3, 3), graph.ConvTranspose2d(4, 4, 2, 3)),
    "groups 2, dilation 2x1, asymmetric pads": (
        (4, 3, 4),
        graph.ConvTranspose2d(4, 4, (3, 2), (2, 1), (1, 0, 0, 1), (0, 0), (2, 1), 2),
    ),
    "depthwise 4x4 stride 2": ((8, 3, 3), graph.ConvTranspose2d(8, 8, 4, 2, 1, groups=8)),
    "1-D stride 2 output_padding 1": (
        (4, 1, 6),
        graph.ConvTranspose2d(4, 4, (1, 3), (1, 2), (0, 0, 1, 0), (0, 1)),
    ),
}

SETUPS = [
    pytest.param(TINY, "amaranth", id="tiny-amaranth"),
    pytest.param(NARROW, "amaranth", id="bw3-lat7-amaranth", marks=pytest.mark.slow),
    pytest.param(TINY, "verilator", id="tiny-verilator", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("config", "backend"), SETUPS)
@pytest.mark.parametrize("name", list(LAYERS))
def test_conv_transpose_layer_bit_and_cycle_exact(name, config, backend):
    shape, op = LAYERS[name]
    net = graph.Network("convt")
    net.add("input", graph.Input(shape))
    net.add("convt", op, ["input"])
    qnet = quantized(net)
    program = compile(qnet, config)
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


def test_conv_transpose_layer_in_verilator():
    """One layer through the generated Verilog in the fast tier (the others are slow)."""
    test_conv_transpose_layer_bit_and_cycle_exact(
        "3x3 stride 2 pad 1 output_padding 1 relu", TINY, "verilator"
    )


@pytest.mark.slow
def test_the_unet_in_verilator():
    """The zoo's U-Net (four ConvTranspose2d up-convolutions between convs, pools and
    concats) at 16x16 on `tiny`: 6.6 M cycles through the generated Verilog, bit- and
    cycle-exact."""
    zoo_check("unet", 16, TINY, "verilator")
