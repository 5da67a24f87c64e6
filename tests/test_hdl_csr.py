# amaranth: UnusedElaboratable=no
"""``hdl.csr.ControlRegisters`` and ``hdl.axi_lite.Slave``: the register map over AXI4-Lite.

Every transaction goes through :class:`tests.hdl_support.AxiLiteMaster`, which randomises
valid/ready timing and the AW/W order and checks that responses hold until taken. The
controller side (``busy``, ``done``, ``error``, counters) is driven by the testbench.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Fragment

from accel import isa
from accel.config import preset
from hdl import axi_lite
from hdl.axi_lite import Resp
from hdl.axi_top import AxiLiteAccelerator
from hdl.csr import ID, REGISTERS, Access, ControlRegisters
from hdl.flow.generate import verilog
from tests.hdl_support import AxiLiteMaster, assert_lints_clean, simulate

BY_NAME = {reg.name: reg for reg in REGISTERS}
MAPPED = {reg.offset for reg in REGISTERS}
#: Word offsets inside the 4 KiB window that no register has.
UNMAPPED = [0x1C, 0x90, 0x94, 0x100, 0xFFC]


def off(name: str) -> int:
    return BY_NAME[name].offset


def strobe_mask(strb: int) -> int:
    return sum(0xFF << (8 * k) for k in range(4) if strb >> k & 1)


def test_the_map_is_well_formed():
    names = [reg.name for reg in REGISTERS]
    assert len(set(names)) == len(names)
    offsets = [reg.offset for reg in REGISTERS]
    assert offsets == sorted(set(offsets))
    assert all(o % 4 == 0 for o in offsets)
    for reg in REGISTERS:
        assert reg.reset & ~reg.mask == 0, reg.name
        used = 0
        for field in reg.fields:
            assert field.lsb + field.width <= 32 and field.mask & used == 0, (reg.name, field)
            used |= field.mask
    assert BY_NAME["ID"].reset == ID
    assert BY_NAME["VERSION"].reset & 0xFFFF == isa.ISA_VERSION
    assert not MAPPED & set(UNMAPPED)


@pytest.mark.parametrize(
    ("addr_width", "error", "message"),
    [
        (7, ValueError, r"must be in \[8, 32\] for the register map, not 7"),
        (33, ValueError, r"must be in \[8, 32\] for the register map, not 33"),
        (1, ValueError, "AXI4-Lite address width must be >= 2, not 1"),
        ("12", TypeError, "AXI4-Lite address width must be an int, not '12'"),
    ],
)
def test_bad_address_width(addr_width, error, message):
    with pytest.raises(error, match=message):
        ControlRegisters(addr_width)


def test_signature_equality():
    assert axi_lite.Signature(12) == axi_lite.Signature(12) != axi_lite.Signature(8)
    assert repr(axi_lite.Signature(12)) == "axi_lite.Signature(12)"
    with pytest.raises(ValueError, match="must be <= 64, not 65"):
        axi_lite.Signature(65)


def run(bench_body, seed: int, *, max_delay: int = 3):
    """Simulate a fresh ControlRegisters with ``bench_body(ctx, dut, master)``."""
    dut = ControlRegisters()
    master = AxiLiteMaster(dut.bus, random.Random(seed), max_delay)

    async def bench(ctx):
        await bench_body(ctx, dut, master)

    simulate(dut, bench)


@pytest.mark.parametrize("seed", range(3))
def test_every_register_reads_its_reset_value(seed):
    async def body(ctx, dut, master):
        for reg in random.Random(seed).sample(REGISTERS, len(REGISTERS)):
            assert await master.read(ctx, reg.offset) == (reg.reset, Resp.OKAY), reg.name
        # The low address bits are ignored.
        assert await master.read(ctx, off("ID") | 3) == (ID, Resp.OKAY)

    run(body, seed)


class RegisterModel:
    """The register file as the docs describe it, for writes and reads from the bus only
    (the controller side idle: busy, done, error, counters 0)."""

    def __init__(self):
        self.values = {reg.name: reg.reset for reg in REGISTERS}

    def write(self, addr: int, data: int, strb: int) -> int:
        reg = next((r for r in REGISTERS if r.offset == addr & ~3), None)
        if reg is None:
            return Resp.SLVERR
        bits = strobe_mask(strb) & reg.mask
        if reg.access == Access.RW:
            self.values[reg.name] = (self.values[reg.name] & ~bits) | (data & bits)
        elif reg.access == Access.W1C:
            self.values[reg.name] &= ~(data & bits)
        return Resp.OKAY

    def read(self, addr: int) -> tuple[int, int]:
        reg = next((r for r in REGISTERS if r.offset == addr & ~3), None)
        if reg is None:
            return 0, Resp.SLVERR
        return (0 if reg.access == Access.WO else self.values[reg.name]), Resp.OKAY


@pytest.mark.parametrize("seed", range(4))
def test_random_transactions_against_a_model(seed):
    """Random reads and writes (random strobes, mapped and unmapped addresses, writes to
    read-only registers) give the model's responses and data."""
    rng = random.Random(seed)
    model = RegisterModel()
    addrs = [reg.offset for reg in REGISTERS if reg.name != "CTRL"] + UNMAPPED

    async def body(ctx, dut, master):
        for _ in range(60):
            addr = rng.choice(addrs) | rng.randrange(4)
            if rng.random() < 0.5:
                data, strb = rng.getrandbits(32), rng.getrandbits(4)
                assert await master.write(ctx, addr, data, strb) == model.write(addr, data, strb)
            else:
                assert await master.read(ctx, addr) == model.read(addr), hex(addr)
        assert not ctx.get(dut.start)

    run(body, seed, max_delay=4)


def test_wstrb_writes_bytes():
    async def body(ctx, dut, master):
        base = off("COMPUTE_BASE")
        assert await master.write(ctx, base, 0x11223344) == Resp.OKAY
        assert await master.write(ctx, base, 0xAABBCCDD, strb=0b0101) == Resp.OKAY
        assert await master.read(ctx, base) == (0x11BB33DD, Resp.OKAY)
        assert ctx.get(dut.compute_base) == 0x11BB33DD
        assert await master.write(ctx, base, 0xFFFFFFFF, strb=0) == Resp.OKAY
        assert await master.read(ctx, base) == (0x11BB33DD, Resp.OKAY)

    run(body, 7)


def test_unmapped_addresses_answer_slverr_and_change_nothing():
    async def body(ctx, dut, master):
        for addr in UNMAPPED:
            assert await master.write(ctx, addr, 0xFFFFFFFF) == Resp.SLVERR
            assert await master.read(ctx, addr) == (0, Resp.SLVERR)
        for reg in REGISTERS:
            assert await master.read(ctx, reg.offset) == (reg.reset, Resp.OKAY), reg.name
        assert not ctx.get(dut.start)

    run(body, 11)


def test_start_pulse():
    """START: one cycle, the cycle after the write's access; ignored without its byte
    strobe, with the bit clear, and while busy."""
    dut = ControlRegisters()
    master = AxiLiteMaster(dut.bus, random.Random(3))
    starts, writes = [], []
    cycle = [0]

    async def bench(ctx):
        for data, strb, busy in [(1, 0b1110, 0), (0xFFFFFFFE, 0xF, 0), (1, 0xF, 1), (1, 0xF, 0)]:
            ctx.set(dut.busy, busy)
            assert await master.write(ctx, off("CTRL"), data, strb) == Resp.OKAY
            writes.append(cycle[0])
            for _ in range(3):
                await ctx.tick()
        ctx.set(dut.busy, 0)

    async def monitor(ctx):
        for cycle[0] in range(100):
            if ctx.get(dut.start):
                starts.append(cycle[0])
            await ctx.tick()

    simulate(dut, bench, monitor)
    # The pulse is in the cycle BVALID rises, the last write's response.
    assert len(starts) == 1 and writes[2] < starts[0] <= writes[3]


def test_interrupts_enable_and_write_one_to_clear():
    async def body(ctx, dut, master):
        done, error = BY_NAME["IRQ_STATUS"].fields
        # A done pulse sets IRQ_STATUS.DONE and STATUS.DONE; irq waits for the enable.
        ctx.set(dut.done, 1)
        await ctx.tick()
        ctx.set(dut.done, 0)
        await ctx.tick()
        assert await master.read(ctx, off("IRQ_STATUS")) == (done.mask, Resp.OKAY)
        assert await master.read(ctx, off("STATUS")) == (0b0010, Resp.OKAY)
        assert not ctx.get(dut.irq)
        assert await master.write(ctx, off("IRQ_ENABLE"), 0xFFFFFFFF) == Resp.OKAY
        assert await master.read(ctx, off("IRQ_ENABLE")) == (0b11, Resp.OKAY)
        assert ctx.get(dut.irq)
        # Writing 0, or 1 without the byte strobe, clears nothing; writing 1 clears.
        assert await master.write(ctx, off("IRQ_STATUS"), 0) == Resp.OKAY
        assert await master.write(ctx, off("IRQ_STATUS"), 1, strb=0b1110) == Resp.OKAY
        assert ctx.get(dut.irq)
        assert await master.write(ctx, off("IRQ_STATUS"), done.mask) == Resp.OKAY
        assert not ctx.get(dut.irq)
        assert await master.read(ctx, off("IRQ_STATUS")) == (0, Resp.OKAY)
        # error is a level (sticky in the controller): its rise sets the bit once.
        ctx.set(dut.error, 1)
        await ctx.tick()
        assert ctx.get(dut.irq)
        assert await master.write(ctx, off("IRQ_STATUS"), error.mask) == Resp.OKAY
        assert await master.read(ctx, off("IRQ_STATUS")) == (0, Resp.OKAY)
        assert not ctx.get(dut.irq)
        assert await master.read(ctx, off("STATUS")) == (0b0110, Resp.OKAY)
        # With only DONE enabled, an error does not interrupt.
        ctx.set(dut.error, 0)
        assert await master.write(ctx, off("IRQ_ENABLE"), done.mask) == Resp.OKAY
        ctx.set(dut.error, 1)
        await ctx.tick()
        await ctx.tick()
        assert not ctx.get(dut.irq)
        assert await master.read(ctx, off("IRQ_STATUS")) == (error.mask, Resp.OKAY)

    run(body, 5)


def test_status_done_is_cleared_by_start():
    async def body(ctx, dut, master):
        ctx.set(dut.done, 1)
        await ctx.tick()
        ctx.set(dut.done, 0)
        ctx.set(dut.stalled, 1)
        assert await master.read(ctx, off("STATUS")) == (0b1010, Resp.OKAY)
        assert await master.write(ctx, off("CTRL"), 1) == Resp.OKAY
        await ctx.tick()
        assert await master.read(ctx, off("STATUS")) == (0b1000, Resp.OKAY)

    run(body, 2)


@pytest.mark.parametrize("port", ["data_read_error", "data_write_error", "fetch_error"])
def test_a_bus_error_sets_its_cause_and_the_error_interrupt(port):
    """A one-cycle bus error: STATUS.ERROR and its ERROR_CAUSE bit stay set until START,
    IRQ_STATUS.ERROR rises once; the controller's error is ERROR_CAUSE.ILLEGAL."""
    cause = {f.name: f.mask for f in BY_NAME["ERROR_CAUSE"].fields}
    bit = cause[
        {"data_read_error": "DATA_READ", "data_write_error": "DATA_WRITE"}.get(port, "FETCH_READ")
    ]
    error_irq = BY_NAME["IRQ_STATUS"].fields[1].mask

    async def body(ctx, dut, master):
        assert await master.write(ctx, off("IRQ_ENABLE"), error_irq) == Resp.OKAY
        assert await master.read(ctx, off("ERROR_CAUSE")) == (0, Resp.OKAY)
        ctx.set(getattr(dut, port), 1)
        await ctx.tick()
        ctx.set(getattr(dut, port), 0)
        await ctx.tick()
        assert ctx.get(dut.irq)
        assert await master.read(ctx, off("ERROR_CAUSE")) == (bit, Resp.OKAY)
        assert await master.read(ctx, off("STATUS")) == (0b0100, Resp.OKAY)
        assert await master.write(ctx, off("IRQ_STATUS"), error_irq) == Resp.OKAY
        assert not ctx.get(dut.irq)
        ctx.set(dut.error, 1)  # a second cause: no second rise of STATUS.ERROR
        await ctx.tick()
        await ctx.tick()
        assert not ctx.get(dut.irq)
        assert await master.read(ctx, off("ERROR_CAUSE")) == (bit | cause["ILLEGAL"], Resp.OKAY)
        ctx.set(dut.error, 0)  # the controller clears its error at start
        assert await master.write(ctx, off("CTRL"), 1) == Resp.OKAY
        await ctx.tick()
        assert await master.read(ctx, off("ERROR_CAUSE")) == (0, Resp.OKAY)
        assert await master.read(ctx, off("STATUS")) == (0, Resp.OKAY)

    run(body, 7)


def test_a_lo_read_latches_the_hi_word():
    async def body(ctx, dut, master):
        ctx.set(dut.cycle, 0x1_2345_6789)
        ctx.set(dut.store_blocked_cycles, 0xAB_0000_0001)
        assert await master.read(ctx, off("CYCLE_LO")) == (0x2345_6789, Resp.OKAY)
        ctx.set(dut.cycle, 0x2_0000_0000)
        assert await master.read(ctx, off("CYCLE_HI")) == (1, Resp.OKAY)
        assert await master.read(ctx, off("CYCLE_LO")) == (0, Resp.OKAY)
        assert await master.read(ctx, off("CYCLE_HI")) == (2, Resp.OKAY)
        assert await master.read(ctx, off("STORE_BLOCKED_LO")) == (1, Resp.OKAY)
        assert await master.read(ctx, off("STORE_BLOCKED_HI")) == (0xAB, Resp.OKAY)

    run(body, 9)


def test_the_axi_lite_top_lints_clean(tmp_path):
    top = AxiLiteAccelerator(preset("tiny"))
    assert_lints_clean(verilog(top, "axil_top"), "axil_top", tmp_path)


def test_the_axi_lite_top_ports():
    top = AxiLiteAccelerator(preset("tiny"))
    members = top.signature.members
    assert list(members)[:2] == ["s_axil", "irq"]
    for name in ("start", "busy", "done", "cycle", "load_base", "load_count", "post_busy_cycles"):
        assert name not in members
    for name in ("imem_load", "trace_store_done_index", "ar", "r", "w", "b"):
        assert name in members
    assert top.core.controller.counter_bits == 64
    Fragment.get(top, None)
