"""Abstract instructions: what lowering produces and synchronisation consumes.

An :class:`Op` is one ISA instruction (its ``wait``/``signal`` fields still zero) with the
buffer words and DRAM bytes it reads and writes. Lowering appends ops in one sequential
*program order*; :func:`accel.compiler.sync.synchronise` turns that list into per-engine
streams. Ranges are half-open ``(space, lo, hi)``: a buffer's words (``"in"``, ``"w"``,
``"p"``, ``"acc"``, ``"out"``) or the bytes of one DRAM tensor (``"dram:" + root``).
"""

from __future__ import annotations

from dataclasses import dataclass

from accel.isa import Instruction

Range = tuple[str, int, int]  # (space, lo, hi): words of a buffer or bytes of a DRAM tensor


@dataclass
class Op:
    """One instruction in program order and the ranges it reads and writes."""

    instr: Instruction
    reads: list[Range]
    writes: list[Range]
