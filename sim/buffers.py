"""The on-chip SRAMs and their access counters.

========  ==========================  ==========================================
buffer    word                        written by / read by
========  ==========================  ==========================================
``in``    ``rows`` int8 (one pixel's  LOAD / window generator (COMPUTE)
          channel tile)
``w``     ``cols`` int8 (one row of   LOAD / weight loader (COMPUTE)
          a weight tile)
``p``     ``cols`` x (bias, mult,     LOAD / POST
          shift) int32
``acc``   ``cols`` int32              COMPUTE (read-modify-write) / POST
``out``   ``cols`` int8               POST / STORE
``t``     16 int8 (entries of an      LOAD / POST (every lane, its own entry)
          activation table)
========  ==========================  ==========================================
"""

from __future__ import annotations

import numpy as np

from accel.config import AccelConfig
from accel.isa import TABLE_WORD_BYTES, Buffer

NAMES = ("in", "w", "p", "acc", "out", "t")
#: Buffer names by :class:`accel.isa.Buffer` (the LOAD destinations).
LOAD_NAMES = ("in", "w", "p", "t")


class Buffers:
    def __init__(self, config: AccelConfig) -> None:
        rows, cols = config.array.rows, config.array.cols
        self.input = np.zeros((config.input_words, rows), dtype=np.int8)
        self.weight = np.zeros((config.weight_words, cols), dtype=np.int8)
        self.param = np.zeros((config.param_words, cols, 3), "<i4")
        self.acc = np.zeros((config.acc_rows, cols), dtype=np.int32)
        self.out = np.zeros((config.output_words, cols), dtype=np.int8)
        self.table = np.zeros((config.table_words, TABLE_WORD_BYTES), dtype=np.int8)
        self.reads = dict.fromkeys(NAMES, 0)
        self.writes = dict.fromkeys(NAMES, 0)
        arrays = (self.input, self.weight, self.param, self.acc, self.out, self.table)
        self._words = {name: array.shape[0] for name, array in zip(NAMES, arrays, strict=True)}
        self._words.update((int(Buffer(i)), self._words[name]) for i, name in enumerate(LOAD_NAMES))
        self._bytes = tuple(
            a.reshape(a.shape[0], -1).view(np.uint8)
            for a in (self.input, self.weight, self.param, self.table)
        )

        #: LOADs applied so far, and for the input and weight buffers the LOAD (1-based
        #: count) that last wrote each word, 0 if none: lets a reader that uses words read
        #: earlier prove that they are unchanged (:meth:`unchanged_since`).
        self.loads = 0
        self._loaded_at = {
            int(Buffer.INPUT): np.zeros(config.input_words, np.int64),
            int(Buffer.WEIGHT): np.zeros(config.weight_words, np.int64),
        }

    def loaded(self, buffer: int, lo: int, hi: int) -> None:
        """Record a LOAD that wrote (at most) words ``[lo, hi)`` of ``buffer``."""
        self.loads += 1
        stamps = self._loaded_at.get(buffer)
        if stamps is not None:
            stamps[lo:hi] = self.loads

    def unchanged_since(self, buffer: int, lo: int, hi: int, loads: int) -> bool:
        """No LOAD after the first ``loads`` wrote words ``[lo, hi)`` of the input or weight
        buffer (their only writer)."""
        return hi <= lo or int(self._loaded_at[buffer][lo:hi].max()) <= loads

    def byte_view(self, buffer: int) -> np.ndarray:
        """(words, word_bytes) uint8 view of a LOAD destination."""
        return self._bytes[buffer]

    def check(self, name: str | int, base: int, count: int) -> None:
        size = self._words[name]
        if isinstance(name, int):
            name = LOAD_NAMES[name]
        if base < 0 or base + count > size:
            raise IndexError(f"{name} buffer access [{base}, {base + count}) outside {size} words")

    def count_read(self, name: str | int, words: int) -> None:
        self.reads[name if isinstance(name, str) else LOAD_NAMES[name]] += words

    def count_write(self, name: str | int, words: int) -> None:
        self.writes[name if isinstance(name, str) else LOAD_NAMES[name]] += words
