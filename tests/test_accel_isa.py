"""The instruction encoding and the program container."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel import config, isa, models, ptq
from accel.compiler import compile
from accel.program import Program


def instructions():
    def build(cls):
        fields = {}
        strategies = {}
        for name, width, signed in isa.FIELDS[cls]:
            if name == "opcode":
                continue
            low, high = (
                (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
            )
            strategies[name] = st.integers(low, high)
        fields.update(strategies)
        return st.builds(cls, **fields)

    return st.one_of(*(build(cls) for cls in isa.FIELDS))


@settings(max_examples=300, deadline=None)
@given(instructions())
def test_encode_decode_round_trip(instr):
    data = isa.encode(instr)
    assert len(data) == isa.INSTRUCTION_BYTES
    assert isa.decode(data) == instr


@settings(max_examples=100, deadline=None)
@given(st.lists(instructions(), max_size=12), st.data())
def test_encode_all_and_decode_all_equal_one_by_one(instrs, data):
    """Any mix of classes, repeats included (one object several times in a stream; equal
    instructions decode to one object), every field at its extremes as often as hypothesis
    likes."""
    instrs = instrs + data.draw(st.lists(st.sampled_from(instrs), max_size=6)) if instrs else []
    body = b"".join(isa.encode(i) for i in instrs)
    assert isa.encode_all(instrs) == body
    decoded = isa.decode_all(body)
    assert decoded == [isa.decode(isa.encode(i)) for i in instrs] == instrs
    assert all(type(v) is int for i in decoded for v in i.__dict__.values())


def test_every_field_fits_the_instruction_width():
    for cls, fields in isa.FIELDS.items():
        assert sum(width for _, width, _ in fields) <= 8 * isa.INSTRUCTION_BYTES, cls
        names = [name for name, _, _ in fields if name != "opcode"]
        assert sorted(names) == sorted(f.name for f in dataclasses.fields(cls)), cls


@pytest.mark.parametrize(
    ("instr", "match"),
    [
        (
            isa.Load(dram_addr=1 << 32),
            r"Load.dram_addr = 4294967296 does not fit its 32-bit unsigned",
        ),
        (isa.Compute(origin_h=-40000), r"Compute.origin_h = -40000 does not fit its 16-bit signed"),
        (isa.Load(inner_stride=1 << 70), r"Load.inner_stride = 1180591620717411303424 does not"),
        (isa.Post(act_min=-129), r"Post.act_min = -129 does not fit"),
        (isa.Store(run_bytes=-1), r"Store.run_bytes = -1 does not fit"),
    ],
)
def test_encode_rejects_values_that_do_not_fit(instr, match):
    with pytest.raises(ValueError, match=match):
        isa.encode(instr)
    with pytest.raises(ValueError, match=match):  # the first that does not fit, named
        isa.encode_all([isa.Load(), instr, isa.Post(act_min=-200)])
    with pytest.raises(TypeError, match="not an instruction"):
        isa.encode_all([isa.Load(), "LOAD"])


def test_decode_rejects_bad_input():
    with pytest.raises(ValueError, match=r"an instruction is 64 bytes, not 3"):
        isa.decode(b"abc")
    with pytest.raises(ValueError, match=r"unknown opcode 15"):
        isa.decode(bytes([15]) + bytes(63))
    with pytest.raises(ValueError, match=r"^65 bytes are not a whole number of 64-byte inst"):
        isa.decode_all(bytes(65))
    with pytest.raises(ValueError, match=r"unknown opcode 15"):
        isa.decode_all(isa.encode(isa.Load()) + bytes([15]) + bytes(63))


def test_semaphores_have_one_producer_and_one_consumer():
    assert set(isa.SEMAPHORES) == set(isa.Sem)
    for producer, consumer in isa.SEMAPHORES.values():
        assert producer != consumer


def test_program_save_load_round_trip(tmp_path):
    qnet = ptq.quantize(models.get("tinynet"), seed=0)
    program = compile(qnet, config.preset("tiny"))
    path = tmp_path / "p.bin"
    program.save(path)
    loaded = Program.load(path)
    assert loaded.streams == program.streams
    assert loaded.config == program.config
    assert loaded.inputs == program.inputs and loaded.outputs == program.outputs
    assert loaded.layers == program.layers
    np.testing.assert_array_equal(loaded.constants, program.constants)
    assert "COMPUTE" in program.listing()


def test_program_rejects_foreign_files():
    with pytest.raises(ValueError, match=r"not an accel program"):
        Program.from_bytes(b"hello world, not a program")
