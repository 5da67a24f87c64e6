"""Buffer occupancy per layer: how much of each on-chip buffer a layer's instructions touch.

For every layer of a :class:`~accel.program.Program` and every on-chip buffer
(:data:`BUFFERS`), :func:`buffer_occupancy` counts the distinct buffer words that the layer's
instructions write or read -- the layer's *working set* in that buffer -- and divides it by the
buffer's depth in words (:func:`buffer_depths`, the geometry of ``sim/buffers.py``):

=========  ======================================  ==========================================
buffer     depth (words, an AccelConfig property)  words counted
=========  ======================================  ==========================================
input      ``input_words``                         LOAD writes; COMPUTE window reads
weight     ``weight_words``                        LOAD writes; ARRAY-mode weight tiles
param      ``param_words``                         LOAD writes; the parameter word of a
                                                   REQUANT POST
acc        ``acc_rows``                            COMPUTE rows ``acc_base ..+ pixels``;
                                                   POST rows ``acc_base ..+ count``
output     ``output_words``                        POST writes ``out_base ..+ count``; STORE
                                                   reads ``out_base ..+ outer*inner``
=========  ======================================  ==========================================

The counts are exact, from the fields of the instructions (``accel/isa.py``):

* LOAD run ``(o, j)`` writes words ``sram_addr + o*sram_outer_stride + j*n + w`` for
  ``w < n = ceil(run_bytes / word_bytes)``;
* COMPUTE reads the input words the window generator addresses (:mod:`accel.window`),
  ``in_base + ct*ct_stride + h*tile_w + w`` for every in-image row offset ``h = p*stride_h +
  r*dil_h`` and column offset ``w = q*stride_w + s*dil_w`` (VADD: offsets ``0`` and
  ``in_base_b - in_base``, no kernel); padded positions are generated, not read, and are not
  counted;
* ARRAY-mode COMPUTE reads weight words ``w_base .. w_base + passes*rows - 1``; the vector
  modes read no weights.

Addresses are absolute: the hardware does not wrap them modulo the depth (the cycle model
rejects an access past the end), so a word outside ``[0, depth)`` is an error here too.

The working set is the address footprint over the whole layer, not the data live at one
instant: when a layer cycles through the slots of a double-buffered ring (two halves of the
input buffer, up to four accumulator and output slots), every slot counts. It says how much
of each buffer the compiler's mapping of the layer uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from accel import timing, window
from accel.config import AccelConfig
from accel.isa import (
    TABLE_WORDS,
    Buffer,
    Compute,
    ComputeMode,
    Instruction,
    Load,
    Post,
    PostMode,
    Store,
)

__all__ = ["BUFFERS", "buffer_depths", "buffer_occupancy", "instruction_words"]

#: The on-chip buffers, in the order of the columns of :func:`buffer_occupancy`.
BUFFERS = ("input", "weight", "param", "acc", "output", "table")

_LOAD_TARGET = {
    Buffer.INPUT: "input",
    Buffer.WEIGHT: "weight",
    Buffer.PARAM: "param",
    Buffer.TABLE: "table",
}


def buffer_depths(config: AccelConfig) -> dict[str, int]:
    """Depth in words of every buffer (as :class:`sim.buffers.Buffers` allocates them)."""
    return {
        "input": config.input_words,
        "weight": config.weight_words,
        "param": config.param_words,
        "acc": config.acc_rows,
        "output": config.output_words,
        "table": config.table_words,
    }


def _ranges(instr: Instruction, config: AccelConfig) -> Iterable[tuple[str, Any, Any]]:
    """(buffer, lo, hi) word ranges ``[lo, hi)`` an instruction touches (lo/hi may be
    arrays); COMPUTE's input reads come from :func:`accel.window.distinct_words` instead."""
    if isinstance(instr, Load):
        per_run = timing.ceil_div(instr.run_bytes, timing.word_bytes(config, instr.buffer))
        span = instr.inner_count * per_run
        if instr.outer_count == 1:
            lo = instr.sram_addr
        else:
            lo = instr.sram_addr + np.arange(instr.outer_count) * instr.sram_outer_stride
        yield _LOAD_TARGET[Buffer(instr.buffer)], lo, lo + span
    elif isinstance(instr, Compute):
        if instr.mode == ComputeMode.ARRAY:
            yield "weight", instr.w_base, instr.w_base + instr.weight_words(config.array.rows)
        if instr.k_extra:  # input-stationary k tiles: rows from acc_base + q*k_stride
            lo = instr.acc_base + np.arange(instr.k_tiles) * instr.k_stride
            yield "acc", lo, lo + instr.pixels
        else:
            yield "acc", instr.acc_base, instr.acc_base + instr.pixels
    elif isinstance(instr, Post):
        yield "acc", instr.acc_base, instr.acc_base + instr.count
        if instr.mode == PostMode.REQUANT:
            yield "param", instr.param_base, instr.param_base + 1
        if instr.lut:
            yield "table", instr.table * TABLE_WORDS, (instr.table + 1) * TABLE_WORDS
        yield "output", instr.out_base, instr.out_base + instr.count
    elif isinstance(instr, Store):
        yield "output", instr.out_base, instr.out_base + instr.outer_count * instr.inner_count
    else:
        raise TypeError(f"not an instruction: {instr!r}")


def instruction_words(instr: Instruction, config: AccelConfig) -> dict[str, np.ndarray]:
    """The sorted distinct words of every buffer one instruction writes or reads."""
    out: dict[str, list[np.ndarray]] = {}
    for name, lo, hi in _ranges(instr, config):
        for a, b in zip(np.atleast_1d(lo), np.atleast_1d(hi), strict=True):
            out.setdefault(name, []).append(np.arange(a, b))
    if isinstance(instr, Compute):
        out.setdefault("input", []).append(window.distinct_words(instr))
    return {name: np.unique(np.concatenate(parts)) for name, parts in out.items()}


class _Footprint:
    """The union of word ranges and word lists of one buffer in one layer."""

    def __init__(self) -> None:
        self.lo: list[int] = []
        self.hi: list[int] = []
        self.lo_arrays: list[np.ndarray] = []
        self.hi_arrays: list[np.ndarray] = []
        self.words: list[np.ndarray] = []

    def add(self, lo, hi) -> None:
        if isinstance(lo, np.ndarray):
            self.lo_arrays.append(lo)
            self.hi_arrays.append(hi)
        else:
            self.lo.append(lo)
            self.hi.append(hi)

    def count(self, depth: int, where: str) -> int:
        lo = np.concatenate([np.asarray(self.lo, dtype=np.int64), *self.lo_arrays])
        hi = np.concatenate([np.asarray(self.hi, dtype=np.int64), *self.hi_arrays])
        keep = hi > lo
        lo, hi = lo[keep], hi[keep]
        words = np.concatenate([np.zeros(0, dtype=np.int64), *self.words])
        if not lo.size and not words.size:
            return 0
        first = min(lo.min(initial=0), words.min(initial=0))
        last = max(hi.max(initial=0), words.max(initial=-1) + 1)  # one past the last word
        if first < 0 or last > depth:
            raise ValueError(
                f"{where} touches words [{first}, {last}) outside the {depth}-word buffer"
            )
        # Ranges as a difference array (+1 at lo, -1 at hi): a word is covered where the
        # running sum is positive. Linear in ranges + depth, no sort.
        diff = np.bincount(lo, minlength=depth + 1) - np.bincount(hi, minlength=depth + 1)
        covered = np.cumsum(diff[:depth]) > 0
        covered[words] = True
        return int(np.count_nonzero(covered))


def buffer_occupancy(program) -> list[dict[str, Any]]:
    """One row per layer of ``program`` (in ``program.layers`` order, every layer present):
    ``layer``, ``kind``, then for every buffer of :data:`BUFFERS` ``<buffer>_words`` (distinct
    words the layer's instructions write or read) and ``<buffer>_fraction`` (that / the
    buffer's depth, rounded to 6 digits; 0 for a buffer the layer does not use).

    Uses only ``program.config``, ``program.streams`` and ``program.layers`` (``name``,
    ``kind``). Raises ``ValueError`` if an instruction touches a word past a buffer's end.
    """
    config = program.config
    depths = buffer_depths(config)
    layers = [dict.fromkeys(BUFFERS) for _ in program.layers]
    for stream in program.streams.values():
        for instr in stream:
            footprints = layers[instr.layer]
            for name, lo, hi in _ranges(instr, config):
                if footprints[name] is None:
                    footprints[name] = _Footprint()
                footprints[name].add(lo, hi)
            if isinstance(instr, Compute):
                if footprints["input"] is None:
                    footprints["input"] = _Footprint()
                footprints["input"].words.append(window.distinct_words(instr))
    rows = []
    for info, footprints in zip(program.layers, layers, strict=True):
        row: dict[str, Any] = {"layer": info.name, "kind": info.kind}
        for name in BUFFERS:
            fp = footprints[name]
            where = f"layer {info.name!r} ({name} buffer)"
            words = 0 if fp is None else fp.count(depths[name], where)
            row[f"{name}_words"] = words
            row[f"{name}_fraction"] = round(words / depths[name], 6)
        rows.append(row)
    return rows
