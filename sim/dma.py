"""DMA engine: LOAD (DRAM -> input/weight/parameter buffer) and STORE (output buffer -> DRAM).

A STORE with ``lane_stride`` > 1 scatters each word's lanes to every ``lane_stride``-th byte
(:class:`accel.isa.Store`); its timing is that of a contiguous run of ``run_bytes``.

Timing (``accel.timing``): a LOAD is done ``latency + beats`` cycles after it starts, a STORE
``beats + latency``; runs are pipelined, so the latency is paid once per instruction.
"""

from __future__ import annotations

import numpy as np

from accel import timing
from accel.config import AccelConfig
from accel.isa import Load, Store
from sim.buffers import Buffers
from sim.dram import Dram


def execute_load(load: Load, dram: Dram, buffers: Buffers) -> None:
    """Move the runs of ``load`` into consecutive words of its buffer (zero-filled tails)."""
    runs = dram.read_runs(
        load.dram_addr,
        load.outer_count,
        load.outer_stride,
        load.inner_count,
        load.inner_stride,
        load.run_bytes,
    )
    memory = buffers.byte_view(load.buffer)
    word = memory.shape[1]
    per_run = -(-load.run_bytes // word)
    padded = np.zeros((load.outer_count, load.inner_count, per_run * word), dtype=np.uint8)
    padded[..., : load.run_bytes] = runs
    words = padded.reshape(load.outer_count, load.inner_count * per_run, word)
    for i in range(load.outer_count):
        base = load.sram_addr + i * load.sram_outer_stride
        buffers.check(load.buffer, base, words.shape[1])
        memory[base : base + words.shape[1]] = words[i]
    buffers.count_write(load.buffer, load.outer_count * load.inner_count * per_run)


def execute_store(store: Store, dram: Dram, buffers: Buffers) -> None:
    """Send the runs of ``store``: each the first lanes of an output word, contiguous or
    scattered to every ``lane_stride``-th byte."""
    count = store.outer_count * store.inner_count
    buffers.check("out", store.out_base, count)
    lanes = store.lanes
    words = buffers.out[store.out_base : store.out_base + count, :lanes]
    runs = words.view(np.uint8).reshape(store.outer_count, store.inner_count, lanes)
    step = max(1, store.lane_stride)
    dram.write_runs(store.dram_addr, store.outer_stride, store.inner_stride, runs, step)
    buffers.count_read("out", count)


def load_span(load: Load, config: AccelConfig) -> tuple[int, int]:
    """The buffer words ``[lo, hi)`` a LOAD may write (every run, tails included)."""
    per_run = -(-load.run_bytes // timing.word_bytes(config, load.buffer))
    last = load.sram_addr + (load.outer_count - 1) * load.sram_outer_stride
    return load.sram_addr, last + load.inner_count * per_run
