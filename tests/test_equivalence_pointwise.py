"""Activation tables on the RTL: the networks of tests/test_sim_pointwise.py (every way a
table runs: fused into a conv, a linear, an add, the pools; on its own after the network
input and after a tensor with two consumers) on ``tiny``, on the Amaranth simulator and on
Verilator: every instruction's (start, done) equal to the cycle model's, the outputs bit for
bit the int8 golden model's. A second network uses the other table functions, so both table
slots hold tables other than the first network's."""

from __future__ import annotations

import pytest

from accel import config, executor, synthetic
from accel.compiler import compile
from accel.isa import Buffer, Engine
from tests.layers import quantized
from tests.test_equivalence_rtl import check
from tests.test_sim_pointwise import lut_network

TINY = config.preset("tiny")


@pytest.mark.parametrize("backend", ["amaranth", "verilator"])
@pytest.mark.parametrize("function", ["sigmoid", "gelu_tanh"])
def test_network_with_tables_is_bit_and_cycle_exact(function, backend):
    qnet = quantized(lut_network(function))
    program = compile(qnet, TINY)
    # Both slots are used, each by several tables.
    slots = {i.table for i in program.streams[Engine.POST] if i.lut}
    assert slots == {0, 1}
    assert sum(i.buffer == Buffer.TABLE for i in program.streams[Engine.LOAD]) == 7
    inputs = synthetic.random_int8_inputs(qnet, seed=3)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


@pytest.mark.slow
def test_network_with_tables_on_edge_in_verilator():
    """16 lanes, each with its own read port of the table buffer; 16-byte DRAM beats (a table
    word per beat)."""
    qnet = quantized(lut_network("silu"))
    program = compile(qnet, config.preset("edge"))
    inputs = synthetic.random_int8_inputs(qnet, seed=4)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), "verilator")
