# amaranth: UnusedElaboratable=no
"""hdl.window, hdl.isa: the window generator issues accel.window.feed_addresses.

Instructions enter as raw encoded bits (accel.isa.encode), so these tests also hold the
hdl.isa layout to the binary encoding. Addresses are compared modulo 2**addr_bits (the
buffer's address width) everywhere, padding positions included; pad bits exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from accel import isa
from accel.config import preset
from accel.isa import Compute, ComputeMode
from accel.window import feed_addresses
from hdl.isa import COMPUTE_LAYOUT, POST_LAYOUT, instruction_layout
from hdl.window import WindowGenerator, addr_bits, decode, decode_bits
from tests.hdl_support import raw, simulate, stream_get, stream_put

CONFIG = preset("tiny")  # 4 KiB input buffer of 4-byte words: 10-bit addresses
BITS = addr_bits(CONFIG)


def expected_words(instr: Compute) -> list[tuple]:
    """(addr mod 2**BITS, pad, pass_start, pass_end, first_pass, last_pass) in feed order."""
    addr, valid = feed_addresses(instr)
    passes, pixels = addr.shape
    return [
        (int(addr[j, v]) % 2**BITS, int(not valid[j, v]), v == 0, v == pixels - 1, j == 0,
         j == passes - 1)
        for j in range(passes)
        for v in range(pixels)
    ]  # fmt: skip


def generator() -> tuple[Module, WindowGenerator]:
    """A window generator under a consumer whose ``ready`` does not depend on the word's
    instruction (``held_ready`` is ``o.ready``); returns (the top to simulate, it)."""
    m = Module()
    m.submodules.dut = dut = WindowGenerator(CONFIG)
    m.d.comb += dut.held_ready.eq(dut.o.ready)
    return m, dut


def run_window(instrs, *, ready=None, offer=None, cycles=None):
    """Present the instructions in order (``offer(cycle)`` says whether to present the next one
    this cycle, ``ready(cycle)`` drives ``o.ready``). Returns the words and, per word, the cycle
    it was accepted, and per instruction the cycle it was accepted."""
    top, dut = generator()
    ready = ready or (lambda cycle: True)
    offer = offer or (lambda cycle: True)
    total = sum(i.passes * i.pixels for i in instrs)
    cycles = cycles or 4 * total + 20
    words: list[tuple] = []
    word_cycles: list[int] = []
    taken: list[int] = []

    async def bench(ctx):
        for cycle in range(cycles):
            k = len(taken)
            presenting = k < len(instrs) and offer(cycle)
            ctx.set(dut.i.valid, presenting)
            ctx.set(
                dut.i.payload.as_value(), decode_bits(instrs[k], CONFIG) if k < len(instrs) else 0
            )
            ctx.set(dut.o.ready, ready(cycle))
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                p = ctx.get(dut.o.payload)
                words.append(
                    (p.addr, p.pad, bool(p.pass_start), bool(p.pass_end), bool(p.first_pass),
                     bool(p.last_pass))
                )  # fmt: skip
                word_cycles.append(cycle)
            if presenting and ctx.get(dut.i.ready):
                taken.append(cycle)
            await ctx.tick()

    simulate(top, bench)
    return words, word_cycles, taken


CONV = Compute(
    in_base=5, ct_count=2, ct_stride=30, tile_w=6, out_h=3, out_w=2, origin_h=-1, origin_w=-1,
    image_h=4, image_w=4, stride_h=2, stride_w=1, dil_h=1, dil_w=2, kernel_h=2, kernel_w=3,
)  # fmt: skip
VADD = Compute(
    mode=ComputeMode.VADD, in_base=100, in_base_b=7, out_h=2, out_w=3, image_h=2, image_w=2,
    tile_w=3, ct_count=5, kernel_h=3, kernel_w=2,  # ignored in VADD
)  # fmt: skip
POOL = Compute(
    mode=ComputeMode.VMAX, in_base=1000, tile_w=9, out_h=2, out_w=2, origin_h=-1, origin_w=-1,
    image_h=3, image_w=3, stride_h=2, stride_w=2, kernel_h=3, kernel_w=3, pad_value=-128,
)  # fmt: skip
ONE = Compute(in_base=3)


def test_window_back_to_back_instructions_issue_one_word_per_cycle_with_no_bubble():
    instrs = [CONV, VADD, ONE, POOL, ONE, ONE]
    words, cycles, taken = run_window(instrs)
    want = [w for i in instrs for w in expected_words(i)]
    assert words == want
    # The first word leaves in cycle 0, the cycle its instruction is presented, and every
    # later word in the next cycle: instruction boundaries cost nothing.
    assert cycles == list(range(len(want)))
    starts = np.cumsum([0] + [i.passes * i.pixels for i in instrs[:-1]])
    # Each instruction is accepted in the cycle of the previous one's last word (the first
    # one, idle, in cycle 0) and its first word follows.
    assert taken == [0, *(int(s) - 1 for s in starts[1:])]


def test_window_first_word_is_issued_in_the_cycle_the_instruction_arrives():
    words, cycles, taken = run_window([CONV], offer=lambda cycle: cycle >= 5)
    assert taken == [5] and cycles[0] == 5
    assert words[0] == expected_words(CONV)[0]


def test_window_holds_its_word_while_not_ready_and_refuses_instructions_while_busy():
    rng = np.random.default_rng(3)
    stalls = rng.random(400) < 0.4
    gaps = rng.random(400) < 0.3
    instrs = [POOL, CONV, ONE, VADD]
    words, _, taken = run_window(
        instrs, ready=lambda c: not stalls[c], offer=lambda c: not gaps[c], cycles=400
    )
    assert words == [w for i in instrs for w in expected_words(i)]
    assert len(taken) == len(instrs)


def test_window_as_a_stream_block_between_a_producer_and_a_slow_consumer():
    """The generator between two independent testbenches: one pushes the instructions
    (``stream_put``), the other pulls every word (``stream_get``), ready only on some cycles.
    The words are accel.window's, in order."""
    top, dut = generator()
    instrs = [POOL, CONV, ONE, VADD, ONE]
    want = [w for i in instrs for w in expected_words(i)]
    rng = np.random.default_rng(12)
    words: list[tuple] = []

    async def producer(ctx):
        for instr in instrs:
            await stream_put(ctx, dut.i, decode_bits(instr, CONFIG))

    async def consumer(ctx):
        for _ in want:
            for _ in range(int(rng.integers(0, 3))):
                await ctx.tick()
            p = await stream_get(ctx, dut.o)
            words.append(
                (p.addr, p.pad, bool(p.pass_start), bool(p.pass_end), bool(p.first_pass),
                 bool(p.last_pass))
            )  # fmt: skip

    simulate(top, producer, consumer)
    assert words == want


def test_window_addresses_wrap_modulo_the_buffer_and_image_coordinates_are_exact():
    wide = Compute(
        in_base=(1 << 20) - 3, ct_count=2, ct_stride=(1 << 20) - 1, tile_w=65535, out_h=2,
        out_w=3, origin_h=-32768, origin_w=32767, image_h=65535, image_w=65535, stride_h=15,
        stride_w=15, dil_h=15, dil_w=15, kernel_h=2, kernel_w=2,
    )  # fmt: skip
    far = Compute(
        origin_h=32767 - 30, origin_w=-5, image_h=32767 + 5, image_w=3, out_h=3, out_w=3,
        stride_h=15, stride_w=3, kernel_h=2, dil_h=15, tile_w=7,
    )  # fmt: skip
    words, _, _ = run_window([wide, far])
    want = expected_words(wide) + expected_words(far)
    assert words == want
    assert {w[1] for w in want} == {0, 1}  # both padded and real positions


@st.composite
def computes(draw):
    mode = draw(st.sampled_from(list(ComputeMode)))
    out_h, out_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ct = draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return Compute(
        mode=mode,
        in_base=draw(st.integers(0, (1 << 20) - 1)),
        in_base_b=draw(st.integers(0, (1 << 20) - 1)),
        ct_count=ct,
        ct_stride=draw(st.integers(0, (1 << 20) - 1)),
        tile_w=draw(st.integers(1, 12)),
        out_h=out_h,
        out_w=out_w,
        origin_h=draw(st.integers(-3, 3)),
        origin_w=draw(st.integers(-3, 3)),
        image_h=draw(st.integers(1, 8)),
        image_w=draw(st.integers(1, 8)),
        stride_h=draw(st.integers(1, 3)),
        stride_w=draw(st.integers(1, 3)),
        dil_h=draw(st.integers(1, 2)),
        dil_w=draw(st.integers(1, 2)),
        kernel_h=kh,
        kernel_w=kw,
    )


@settings(max_examples=25, deadline=None)
@given(st.lists(computes(), min_size=1, max_size=3), st.integers(0, 2**32 - 1))
def test_window_sequence_equals_the_model(instrs, seed):
    rng = np.random.default_rng(seed)
    stalls = rng.random(2000) < 0.25
    total = sum(i.passes * i.pixels for i in instrs)
    words, _, taken = run_window(instrs, ready=lambda c: not stalls[c], cycles=2 * total + 40)
    assert words == [w for i in instrs for w in expected_words(i)]
    assert len(taken) == len(instrs)


@pytest.mark.parametrize("rows", [4, 8])
def test_decode_stage_equals_decode_bits_over_the_whole_field_ranges(rows):
    """hdl.window.decode (the products as sums of shifts, the depthwise taps) against
    the Python reference, every field random over its encoding's range; half of the
    instructions with a depthwise kernel no wider than the array has rows (0 included), so
    every row's taps are decoded for every kernel width that splits them."""
    config = CONFIG.replace(array={"rows": rows, "cols": rows})
    rng = np.random.default_rng(14)
    instrs = []
    for k in range(300):
        values = {}
        for name, width, signed in isa.FIELDS[Compute]:
            if name != "opcode":
                low, high = (-(1 << (width - 1)), 1 << (width - 1)) if signed else (0, 1 << width)
                values[name] = int(rng.integers(low, high))
        if k % 2:
            values["taps_w"] = k // 2 % (rows + 2)
            values["taps_h"] = int(rng.integers(0, rows + 2))
        instrs.append(Compute(**values))
    m = Module()
    instr = Signal(COMPUTE_LAYOUT)
    out = decode(m, instr, config)

    async def bench(ctx):
        for compute in instrs:
            ctx.set(instr.as_value(), raw(compute))
            assert ctx.get(out.as_value()) == decode_bits(compute, config), compute

    sim = Simulator(m)  # combinational: no clock
    sim.add_testbench(bench)
    sim.run()


# --- layouts ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(isa.FIELDS))
def test_instruction_layout_reads_every_field_of_the_encoding(cls):
    rng = np.random.default_rng(len(cls.__name__))
    layout = instruction_layout(cls)
    assert layout.size == sum(w for _, w, _ in isa.FIELDS[cls]) <= 8 * isa.INSTRUCTION_BYTES
    for _ in range(20):
        values = {}
        for name, width, signed in isa.FIELDS[cls]:
            if name == "opcode":
                continue
            low, high = (-(1 << (width - 1)), 1 << (width - 1)) if signed else (0, 1 << width)
            values[name] = int(rng.integers(low, high))
        view = layout.from_bits(raw(cls(**values)))
        assert view.opcode == cls.opcode
        for name, value in values.items():
            assert getattr(view, name) == value, name
    assert instruction_layout(isa.Compute) == COMPUTE_LAYOUT
    assert instruction_layout(isa.Post) == POST_LAYOUT


def test_instruction_layout_rejects_what_is_not_an_instruction_class():
    with pytest.raises(TypeError, match=r"instruction class must be one of .*, not 'Compute'"):
        instruction_layout("Compute")


def test_window_reports_its_address_width_and_rejects_a_bad_config():
    assert WindowGenerator(CONFIG).addr_bits == BITS == 10
    with pytest.raises(TypeError, match=r"config must be an AccelConfig, not None"):
        WindowGenerator(None)


# --- depthwise mode ---------------------------------------------------------------------


def run_depthwise(instrs, stalls):
    """Each word's per-row (address mod 2**BITS, pad) and ``dw`` bit, in feed order."""
    top, dut = generator()
    words: list[tuple] = []
    taken: list[int] = []

    async def bench(ctx):
        for cycle in range(len(stalls)):
            k = len(taken)
            ctx.set(dut.i.valid, k < len(instrs))
            ctx.set(
                dut.i.payload.as_value(), decode_bits(instrs[k], CONFIG) if k < len(instrs) else 0
            )
            ctx.set(dut.o.ready, not stalls[cycle])
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                p = ctx.get(dut.o.payload)
                taps = tuple((t.addr, t.pad) for t in p.taps)
                words.append((bool(p.dw), (p.addr, p.pad), taps))
            if k < len(instrs) and ctx.get(dut.i.ready):
                taken.append(cycle)
            await ctx.tick()

    simulate(top, bench)
    return words


def expected_depthwise(instr: Compute) -> list[tuple]:
    """Per pixel: row ``t`` reads tap ``t``'s word (accel.window), rows past the taps pad."""
    addr, valid = feed_addresses(instr)
    taps, pixels = addr.shape
    rows = CONFIG.array.rows
    out = []
    for v in range(pixels):
        row = tuple(
            (int(addr[t, v]) % 2**BITS, int(not valid[t, v])) if t < taps else (None, 1)
            for t in range(rows)
        )
        out.append((True, row[0], row))
    return out


@st.composite
def depthwise_computes(draw):
    taps_w = draw(st.integers(1, 4))
    taps_h = draw(st.integers(1, 4 // taps_w))
    return Compute(
        depthwise=1,
        taps_h=taps_h,
        taps_w=taps_w,
        in_base=draw(st.integers(0, 1100)),
        tile_w=draw(st.integers(1, 12)),
        out_h=draw(st.integers(1, 3)),
        out_w=draw(st.integers(1, 4)),
        origin_h=draw(st.integers(-3, 3)),
        origin_w=draw(st.integers(-3, 3)),
        image_h=draw(st.integers(1, 8)),
        image_w=draw(st.integers(1, 8)),
        stride_h=draw(st.integers(1, 3)),
        stride_w=draw(st.integers(1, 3)),
        dil_h=draw(st.integers(1, 3)),
        dil_w=draw(st.integers(1, 3)),
    )


@settings(max_examples=25, deadline=None)
@given(st.lists(depthwise_computes(), min_size=1, max_size=3), st.integers(0, 2**32 - 1))
def test_depthwise_rows_read_their_taps_words_as_the_model(instrs, seed):
    stalls = np.random.default_rng(seed).random(400) < 0.25
    words = run_depthwise(instrs, stalls)
    want = [w for i in instrs for w in expected_depthwise(i)]
    assert len(words) == len(want)
    for got, exp in zip(words, want, strict=True):
        assert got[0] == exp[0] and got[1] == exp[1]
        for (addr, pad), (want_addr, want_pad) in zip(got[2], exp[2], strict=True):
            assert pad == want_pad
            if want_addr is not None:
                assert addr == want_addr
