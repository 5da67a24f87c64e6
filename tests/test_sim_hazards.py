"""Accumulator hazards (docs/timing.md, "Accumulator hazards"): the one read-before-write a
program could contain, two consecutive vector instructions on a common accumulator row, is
rejected by both modes of the model naming both instructions; legal neighbours (a read in the
very cycle of the write, which the write-transparent port returns) are not; and the compiler
never emits the pair."""

from __future__ import annotations

import pytest

from accel import config
from accel.compiler import compile
from accel.isa import Compute, ComputeMode, Engine
from accel.timing import COMPUTE_DECODE, VECTOR_LATENCY, VECTOR_MIN_PASS, HazardError
from sim.controller import schedule
from sim.trace import trace_schedule
from tests.layers import zoo_qnet

TINY = config.preset("tiny")


def vsum(acc_base: int, pixels: int, *, accumulate: int) -> Compute:
    """A one-pass VSUM of a 1 x ``pixels`` tile (the input words are irrelevant here)."""
    return Compute(
        mode=ComputeMode.VSUM,
        accumulate=accumulate,
        ct_count=1,
        ct_stride=pixels,
        tile_w=pixels,
        out_h=1,
        out_w=pixels,
        image_h=1,
        image_w=pixels,
        acc_base=acc_base,
    )


def streams(*instrs: Compute) -> dict:
    return {e: list(instrs) if e == Engine.COMPUTE else [] for e in Engine}


def test_back_to_back_vector_instructions_are_fed_one_slot_apart():
    sched = schedule(streams(vsum(0, 4, accumulate=0), vsum(4, 4, accumulate=0)), TINY)
    first, second = sched.start[Engine.COMPUTE]
    # The second is granted when the first leaves the instruction register (its take).
    assert (first, second) == (0, COMPUTE_DECODE)
    feeds = [feed.first for feed in sched.feeds]
    assert feeds == [COMPUTE_DECODE + 1, COMPUTE_DECODE + 1 + max(4, VECTOR_MIN_PASS)]


@pytest.mark.parametrize("pixels", [3, 4, 6])
@pytest.mark.parametrize("shift", [-2, 0, 1, "T-2", "T-1", "T"])
def test_an_accumulating_vector_read_of_a_row_still_being_written_is_rejected(pixels, shift):
    """The second instruction's first word is fed ``max(T, VECTOR_MIN_PASS)`` cycles after the
    first's: it reads row ``acc_base_B + i`` in ``f_B + i``, written in ``f_A + i + offset +
    VECTOR_LATENCY``."""
    offset = shift if isinstance(shift, int) else pixels - int(shift[2:] or 0)
    a = vsum(8, pixels, accumulate=0)
    b = vsum(8 + offset, pixels, accumulate=1)
    spacing = max(pixels, VECTOR_MIN_PASS)
    early = spacing < offset + VECTOR_LATENCY and max(0, -offset) < min(pixels, pixels - offset)
    # The last word of one on the first of the other is always early; no common row, or
    # the same rows in the same order, never (further cases depend on VECTOR_LATENCY).
    assert early if shift == "T-1" else (not early if shift in (-2, 0, "T") else True)
    if early:
        row = 8 + offset + max(0, -offset)
        message = (
            rf"^COMPUTE\[1\] \(layer 0\) reads accumulator row {row} in cycle \d+, before "
            rf"COMPUTE\[0\] \(layer 0\) writes it in cycle \d+"
        )
        with pytest.raises(HazardError, match=message):
            schedule(streams(a, b), TINY)
        with pytest.raises(HazardError, match=message):
            trace_schedule(streams(a, b), TINY)
    else:
        fast, trace = schedule(streams(a, b), TINY), trace_schedule(streams(a, b), TINY)
        assert fast.start == trace.start and fast.done == trace.done


def test_the_hazard_exists_and_an_overwrite_or_distance_removes_it():
    """Offset T-1: the second's first word reads the row the first's last word writes."""
    a, b = vsum(0, 4, accumulate=0), vsum(3, 4, accumulate=1)
    with pytest.raises(HazardError):
        schedule(streams(a, b), TINY)
    schedule(streams(a, vsum(3, 4, accumulate=0)), TINY)  # an overwrite does not read
    schedule(streams(a, vsum(4, 4, accumulate=1)), TINY)  # no common row


def test_array_passes_one_cycle_apart_read_in_the_cycle_of_the_write():
    """Legal (write-transparent read port): the trace check is exact, not >=."""
    one_pixel = Compute(
        mode=ComputeMode.ARRAY,
        accumulate=1,
        ct_count=3,
        ct_stride=1,
        tile_w=1,
        out_h=1,
        out_w=1,
        image_h=1,
        image_w=1,
        acc_base=5,
    )
    fast = schedule(streams(one_pixel, one_pixel), TINY)
    trace = trace_schedule(streams(one_pixel, one_pixel), TINY)
    assert fast.start == trace.start and fast.done == trace.done


@pytest.mark.parametrize(
    ("model", "size", "preset"),
    [("tinynet", None, "tiny"), ("resnet18", 64, "edge"), ("mobilenet_v2", 64, "edge")],
)
def test_the_compiler_never_emits_an_accumulating_vector_instruction(model, size, preset):
    program = compile(zoo_qnet(model, size), config.preset(preset))
    vector = [c for c in program.streams[Engine.COMPUTE] if c.mode != ComputeMode.ARRAY]
    assert vector and not any(c.accumulate for c in vector)
