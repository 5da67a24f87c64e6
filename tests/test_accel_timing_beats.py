"""The transfer closed forms of :mod:`accel.timing` (``load_beats``, ``store_beats``) equal
their per-run definitions summed over every run, on strides that keep every run at the same
offset in its bus block (the shortcut) and on strides that do not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from accel import config, timing
from accel.isa import Buffer, Load, Store


@pytest.mark.parametrize("bandwidth", [1, 4, 16, 64])
@pytest.mark.parametrize("seed", range(3))
def test_beats_equal_the_sum_over_runs(bandwidth, seed):
    cfg = config.preset("edge")
    cfg = dataclasses.replace(cfg, dram=dataclasses.replace(cfg.dram, bandwidth=bandwidth))
    rng = np.random.default_rng(seed)
    for _ in range(300):
        aligned = rng.random() < 0.5  # strides multiples of the bandwidth: the shortcut
        scale = bandwidth if aligned else 1
        fields = dict(
            dram_addr=int(rng.integers(0, 1000)),
            outer_count=int(rng.integers(1, 4)),
            outer_stride=int(rng.integers(0, 40)) * scale,
            inner_count=int(rng.integers(1, 6)),
            inner_stride=int(rng.integers(0, 40)) * scale,
        )
        buffer = Buffer(int(rng.integers(0, len(Buffer))))
        word = timing.word_bytes(cfg, buffer)
        load = Load(buffer=buffer, run_bytes=int(rng.integers(1, 3 * word)), **fields)
        addrs = timing.run_addresses(load).tolist()
        assert timing.load_beats(load, cfg) == sum(
            timing.load_run_beats(a, load.run_bytes, word, bandwidth) for a in addrs
        )
        store = Store(run_bytes=int(rng.integers(1, cfg.output_word_bytes + 1)), **fields)
        assert timing.store_beats(store, cfg) == sum(
            timing.store_run_beats(a, store.run_bytes, bandwidth) for a in addrs
        )
