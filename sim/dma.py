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
    outer, inner, run_bytes = load.outer_count, load.inner_count, load.run_bytes
    runs = dram.read_runs(
        load.dram_addr, outer, load.outer_stride, inner, load.inner_stride, run_bytes
    )
    memory = buffers.byte_view(load.buffer)
    word = memory.shape[1]
    per_run = -(-run_bytes // word)
    words = inner * per_run  # per outer step
    stride = load.sram_outer_stride
    base = load.sram_addr
    if outer == 1 or stride >= words:  # the outer steps write disjoint words: one assignment
        buffers.check(load.buffer, base, (outer - 1) * stride + words)
        target = np.ndarray(
            (outer, inner, per_run * word),
            np.uint8,
            memory,
            base * word,
            (stride * word, per_run * word, 1),
        )
        target[..., :run_bytes] = runs
        if run_bytes < per_run * word:
            target[..., run_bytes:] = 0
    else:  # overlapping outer steps: later steps win, in order, as in the hardware
        padded = np.zeros((outer, inner, per_run * word), dtype=np.uint8)
        padded[..., :run_bytes] = runs
        for i, step in enumerate(padded.reshape(outer, words, word)):
            buffers.check(load.buffer, base + i * stride, words)
            memory[base + i * stride : base + i * stride + words] = step
    buffers.count_write(load.buffer, outer * words)
    buffers.loaded(load.buffer, base, base + (outer - 1) * stride + words)


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
