"""The cocotb testbench of :class:`hdl.axi_top.AxiAccelerator` (run by tests/test_cocotb_axi.py
through the cocotb runner on Verilator; not a pytest module).

The case directory ``$ACCEL_BENCH_DIR`` holds ``case.npz`` (written by the pytest side):
``image`` (the DRAM image with the instruction streams after the data,
``Program.with_instructions``), ``streams`` (base and count per engine, in
:class:`accel.isa.Engine` order), ``offsets`` (the CSR offsets of the
``<E>_BASE``/``<E>_COUNT`` registers, ``IRQ_ENABLE``, ``CTRL``, ``STATUS``, ``IRQ_STATUS``,
``CYCLE_LO``, ``CYCLE_HI``), ``memory`` (``axiram``: cocotbext-axi's ``AxiRam`` on ``m_axi``
and an ``AxiRamRead`` over the same memory on ``m_axi_insn``; ``contract``:
tests/axi_slave.py's ``AxiSlave`` on each, sharing one memory of the config's ``latency``),
``latency``, ``pause`` (the probability that an AXI channel of the memory pauses in a cycle),
``fault`` (a byte range ``(lo, hi)``, empty for none: with ``axiram``, every data read of
``m_axi`` touching it fails, which cocotbext-axi answers with RRESP SLVERR), ``seed`` and
``max_cycles``. The bench puts the image into that memory, programs the registers with
cocotbext-axi's ``AxiLiteMaster`` on ``s_axil``, writes ``CTRL.START``, waits for ``irq`` and
then for ``STATUS.BUSY`` to fall, reads ``STATUS``, ``IRQ_STATUS``, ``ERROR_CAUSE``, the
cycle counter and ``AXI_STALL``, clears the interrupt, and writes ``result.npz``: ``dram``
(the memory afterwards), ``cycles``, ``status``, ``irq_status``, ``error_cause``,
``axi_stall``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import cocotb
import numpy as np
from axi_slave import AxiSlave  # tests/ is on PYTHONPATH
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam, AxiRamRead, AxiReadBus

ENGINES = ("load", "compute", "post", "store")


class _Handles:
    """``ctx.get``/``ctx.set`` over cocotb handles, for :class:`AxiSlave`."""

    @staticmethod
    def get(handle) -> int:
        return int(handle.value)

    @staticmethod
    def set(handle, value) -> None:
        handle.value = int(value)


INSN_MEMBERS = [
    *("arvalid", "arready", "araddr", "arlen", "arsize", "arburst", "arid", "rid"),
    *("rvalid", "rready", "rdata", "rresp", "rlast"),
]
AXI_MEMBERS = [
    *(f"{c}{s}" for c in ("aw", "ar") for s in ("valid", "ready", "addr", "len", "size", "burst")),
    *("awid", "arid", "bid", "rid"),
    *("wvalid", "wready", "wdata", "wstrb", "wlast", "bvalid", "bready", "bresp"),
    *("rvalid", "rready", "rdata", "rresp", "rlast"),
]


async def contract_memory(dut, slaves: list[AxiSlave]) -> None:
    """Step the ``slaves`` once per cycle: outputs in the clock's low phase, handshakes
    sampled before the rising edge (the master's outputs do not depend on the slave's)."""
    ctx = _Handles()
    for slave in slaves:
        for name in ("arready", "awready", "wready", "rvalid", "bvalid"):
            if hasattr(slave.port, name):
                ctx.set(getattr(slave.port, name), 0)
    cycle = 0
    while True:
        await FallingEdge(dut.clk)
        for slave in slaves:
            slave.drive(ctx, cycle)
        await Timer(1, unit="ns")
        for slave in slaves:
            slave.sample(ctx, cycle)
        cycle += 1


def pauses(rng: random.Random, probability: float):
    while True:
        yield rng.random() < probability


@cocotb.test()
async def run_program(dut):
    case_dir = Path(os.environ["ACCEL_BENCH_DIR"])
    case = np.load(case_dir / "case.npz")
    image = case["image"]
    offsets = {str(k): int(v) for k, v in zip(case["offset_names"], case["offsets"], strict=True)}
    pause = float(case["pause"])

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    if str(case["memory"]) == "axiram":
        ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=int(image.size))
        insn = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi_insn"), dut.clk, dut.rst, mem=ram.mem)
        ram.write(0, image.tobytes())
        lo, hi = (int(v) for v in case["fault"])
        if lo < hi:
            read = ram.read_if._read  # cocotbext-axi answers SLVERR when it raises

            async def faulty_read(address, length):
                if address < hi and lo < address + length:
                    raise OSError(f"injected fault at {address:#x}")
                return await read(address, length)

            ram.read_if._read = faulty_read
        if pause:
            rng = random.Random(int(case["seed"]))
            for channel in (
                ram.write_if.aw_channel,
                ram.write_if.w_channel,
                ram.write_if.b_channel,
                ram.read_if.ar_channel,
                ram.read_if.r_channel,
                insn.ar_channel,
                insn.r_channel,
            ):
                channel.set_pause_generator(pauses(rng, pause))

        def memory() -> np.ndarray:
            return np.frombuffer(ram.read(0, int(image.size)), dtype=np.uint8)

    else:
        port = type("Port", (), {n: getattr(dut, f"m_axi_{n}") for n in AXI_MEMBERS})
        insn_port = type("Port", (), {n: getattr(dut, f"m_axi_insn_{n}") for n in INSN_MEMBERS})
        size = len(dut.m_axi_wstrb.value)
        rng = np.random.default_rng(int(case["seed"]))
        latency = int(case["latency"])
        slave = AxiSlave(port, image, latency, size, rng, pause)
        insn_bytes = len(dut.m_axi_insn_rdata.value) // 8
        insn_slave = AxiSlave(insn_port, image, latency, insn_bytes, rng, pause)
        insn_slave.mem = slave.mem  # one memory behind both ports
        cocotb.start_soon(contract_memory(dut, [slave, insn_slave]))

        def memory() -> np.ndarray:
            return slave.mem

    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)

    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    for e, (base, count) in zip(ENGINES, case["streams"], strict=True):
        await axil.write_dword(offsets[f"{e.upper()}_BASE"], int(base))
        await axil.write_dword(offsets[f"{e.upper()}_COUNT"], int(count))
    await axil.write_dword(offsets["IRQ_ENABLE"], 0b11)  # DONE | ERROR
    await axil.write_dword(offsets["CTRL"], 1)  # START
    waited = 0
    while not int(dut.irq.value):
        await ClockCycles(dut.clk, 64)
        waited += 64
        assert waited <= int(case["max_cycles"]), f"no irq after {waited} cycles"
    # An error raises irq while the engines still finish what they hold: wait for BUSY to fall.
    status = await axil.read_dword(offsets["STATUS"])
    while status & 1:
        waited += 8
        assert waited <= int(case["max_cycles"]), f"still BUSY after {waited} cycles"
        await ClockCycles(dut.clk, 8)
        status = await axil.read_dword(offsets["STATUS"])
    irq_status = await axil.read_dword(offsets["IRQ_STATUS"])
    error_cause = await axil.read_dword(offsets["ERROR_CAUSE"])
    lo = await axil.read_dword(offsets["CYCLE_LO"])
    hi = await axil.read_dword(offsets["CYCLE_HI"])
    stall_lo = await axil.read_dword(offsets["AXI_STALL_LO"])
    stall_hi = await axil.read_dword(offsets["AXI_STALL_HI"])
    await axil.write_dword(offsets["IRQ_STATUS"], irq_status)
    await ClockCycles(dut.clk, 2)
    assert not int(dut.irq.value), "irq still high after IRQ_STATUS was cleared"
    np.savez(
        case_dir / "result.npz",
        dram=memory(),
        cycles=hi << 32 | lo,
        status=status,
        irq_status=irq_status,
        error_cause=error_cause,
        axi_stall=stall_hi << 32 | stall_lo,
    )
