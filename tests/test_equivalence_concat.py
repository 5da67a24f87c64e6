"""A chain of prefix concats (a DenseNet block, ``tests/test_accel_prefix_concat.py``) on the
RTL top: every concat a view of the block's last one, each layer's STOREs into its channels
of the shared bytes, its readers' LOADs of a channel prefix; outputs equal to the int8 golden
model and every instruction's start and done cycle equal to the model's, in the Amaranth
simulator and Verilator (:func:`tests.test_equivalence_rtl.check`)."""

from __future__ import annotations

import pytest

from accel import executor, synthetic
from accel.compiler import compile
from tests.layers import quantized
from tests.test_accel_prefix_concat import dense_block
from tests.test_equivalence_rtl import NARROW, TINY, check


@pytest.mark.parametrize(
    ("config", "backend"),
    [
        pytest.param(TINY, "amaranth", id="tiny-amaranth"),
        pytest.param(TINY, "verilator", id="tiny-verilator"),
        pytest.param(NARROW, "amaranth", id="bw3-lat7-amaranth", marks=pytest.mark.slow),
    ],
)
def test_a_dense_block_bit_and_cycle_exact(config, backend):
    qnet = quantized(dense_block(layers=3, growth=5, c0=6, hw=(4, 5)))
    program = compile(qnet, config)
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)
