# amaranth: UnusedElaboratable=no
"""hdl.block_fifo: BlockFIFO behaves cycle for cycle as Amaranth's SyncFIFO.

Both queues get the same random writes and reads (``w_en``, ``w_data``, ``r_en``) in every
cycle; in every cycle their ``w_rdy``, ``r_rdy`` and ``level`` must agree, and ``r_data``
while ``r_rdy``. Depths 1, 2, 3 and 8 wrap the pointers, fill and drain the queue, and write
into the entry that is the next head (the case the register beside the memory covers).
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import fifo

from hdl.block_fifo import BlockFIFO
from tests.hdl_support import simulate


class _Pair(Elaboratable):
    def __init__(self, width: int, depth: int) -> None:
        self.ref = fifo.SyncFIFO(width=width, depth=depth)
        self.dut = BlockFIFO(width=width, depth=depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.ref = self.ref
        m.submodules.dut = self.dut
        return m


@pytest.mark.parametrize("depth", [1, 2, 3, 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_block_fifo_is_cycle_exact_to_sync_fifo(depth, seed):
    pair = _Pair(12, depth)
    rng = random.Random(seed * 100 + depth)
    cycles = 600
    seen = {"reads": 0, "full": 0, "collide": 0}

    async def bench(ctx):
        for cycle in range(cycles):
            # Phases of mostly-writing and mostly-reading, so that the queue fills and drains.
            p_write = 0.8 if (cycle // 50) % 2 == 0 else 0.3
            w_en, r_en = rng.random() < p_write, rng.random() < 0.55
            data = rng.randrange(1 << 12)
            for q in (pair.ref, pair.dut):
                ctx.set(q.w_en, w_en)
                ctx.set(q.w_data, data)
                ctx.set(q.r_en, r_en)
            for name in ("w_rdy", "r_rdy", "level"):
                want, got = ctx.get(getattr(pair.ref, name)), ctx.get(getattr(pair.dut, name))
                assert got == want, f"cycle {cycle}: {name} {got} != SyncFIFO's {want}"
            if ctx.get(pair.ref.r_rdy):
                want, got = ctx.get(pair.ref.r_data), ctx.get(pair.dut.r_data)
                assert got == want, f"cycle {cycle}: r_data {got:#x} != SyncFIFO's {want:#x}"
                seen["reads"] += r_en
                seen["collide"] += w_en and r_en and ctx.get(pair.ref.level) == 1
            seen["full"] += not ctx.get(pair.ref.w_rdy)
            await ctx.tick()

    simulate(pair, bench)
    assert seen["reads"] > cycles // 5
    assert seen["full"] > 0  # the queue filled
    assert seen["collide"] > 0  # an entry written as the head was taken became the head


def test_block_fifo_rejects_a_zero_depth():
    with pytest.raises(ValueError, match="FIFO depth must be >= 1, not 0"):
        BlockFIFO(width=8, depth=0)
