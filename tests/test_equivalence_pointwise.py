"""Activation tables and the RTL: until the RTL builds the table buffer, its backends reject a
program that uses one, naming the instruction, rather than run it wrong."""

from __future__ import annotations

import pytest

from accel import config, synthetic
from accel.compiler import compile
from hdl.flow import amaranth_sim, verilator
from tests.layers import quantized
from tests.test_sim_pointwise import lut_network


@pytest.mark.parametrize(
    "backend", [amaranth_sim.run, verilator.run], ids=["amaranth", "verilator"]
)
def test_rtl_backends_reject_a_program_with_tables_by_name(backend):
    qnet = quantized(lut_network())
    program = compile(qnet, config.preset("tiny"))
    image = program.make_image(synthetic.random_int8_inputs(qnet))
    with pytest.raises(
        NotImplementedError, match=r"^LOAD instruction 0 \(layer 0\) uses an activation table"
    ):
        backend(program, image)
