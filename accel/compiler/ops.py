"""Abstract instructions: what lowering produces and synchronisation consumes.

An abstract instruction is one ISA instruction (its ``wait``/``signal`` fields still zero)
with the buffer words and DRAM bytes it reads and writes. Lowering appends them in one
sequential *program order*; :func:`accel.compiler.sync.synchronise` turns them into
per-engine streams. Ranges are half-open ``(space, lo, hi)``: a buffer's words (``"in"``,
``"w"``, ``"p"``, ``"acc"``, ``"out"``) or the bytes of one DRAM tensor (``"dram:" + root``).

Lowering emits up to millions of them, so they are kept as columns, not objects: an
:class:`OpLog` holds :class:`Block` s, each the instructions of one kind that one step of one
layer emits (its input loads, its COMPUTEs, ...). A block has a *template* (the fields all its
instructions share) and a flat list of rows: per instruction the fields that vary, auxiliary
values its ranges need, and its index in program order. Its ranges are a function of those
columns (numpy arrays), so synchronisation and the field checks run on whole columns. An
:class:`Op` (one instruction object and its ranges) is the same thing one at a time, for the
reference synchroniser.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from accel import isa
from accel.isa import Instruction

Range = tuple[str, int, int]  # (space, lo, hi): words of a buffer or bytes of a DRAM tensor

READ, WRITE = 0, 1

#: A block's ranges from its columns: ``(space, READ or WRITE, lo, hi)``, ``lo``/``hi`` an
#: array with one value per instruction or a number shared by all.
Access = tuple[str, int, "np.ndarray | int", "np.ndarray | int"]
Accesses = Callable[[dict[str, np.ndarray]], list[Access]]


@dataclass
class Op:
    """One instruction in program order and the ranges it reads and writes."""

    instr: Instruction
    reads: list[Range]
    writes: list[Range]


#: (low, high) of every field of every instruction class, as :func:`accel.isa.encode` checks.
FIELD_BOUNDS: dict[type[Instruction], dict[str, tuple[int, int]]] = {
    cls: {
        name: ((-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1))
        for name, width, signed in fields
    }
    for cls, fields in isa.FIELDS.items()
}


class Block:
    """Instructions of one class from one step of one layer: a shared template, and per
    instruction a row of ``columns`` (the varying fields ``names``, then auxiliary values,
    then ``"op"``, the index in program order)."""

    __slots__ = ("accesses", "array", "chunks", "cls", "columns", "names", "rows", "template")

    def __init__(
        self,
        template: Instruction,
        names: tuple[str, ...],
        aux: tuple[str, ...],
        accesses: Accesses,
    ) -> None:
        self.cls = type(template)
        self.template = dict(template.__dict__)  # every field, in the dataclass's order
        unknown = [n for n in names if n not in self.template or n in ("wait", "signal")]
        if unknown:
            raise AssertionError(f"{self.cls.__name__} has no varying field {unknown}")
        self.names = names
        self.columns = (*names, *aux, "op")
        self.accesses = accesses
        self.rows: list[int] = []  # flat while lowering appends, len(columns) per instruction
        self.chunks: list[np.ndarray] = []  # rows appended as arrays (the order is free)
        self.array: np.ndarray | None = None  # (instructions, columns) once sealed

    def __len__(self) -> int:
        if self.array is not None:
            return len(self.array)
        return len(self.rows) // len(self.columns) + sum(len(c) for c in self.chunks)

    def append_columns(self, *columns: np.ndarray | int) -> None:
        """Append rows given column by column (arrays of one length, or numbers shared by
        all rows), in the order of :attr:`columns`."""
        n = max(len(c) for c in columns if isinstance(c, np.ndarray))
        chunk = np.empty((n, len(self.columns)), dtype=np.int64)
        for i, column in enumerate(columns):
            chunk[:, i] = column
        self.chunks.append(chunk)

    def seal(self) -> None:
        """Turn the rows into an int64 array (lowering appends no more), in program
        order (rows may be appended in any order: each carries its index)."""
        if self.array is None:
            array = np.array(self.rows, dtype=np.int64).reshape(-1, len(self.columns))
            if self.chunks:
                array = np.concatenate([array, *self.chunks])
                array = array[np.argsort(array[:, -1], kind="stable")]  # in program order
            self.array, self.rows, self.chunks = array, [], []

    def column(self, name: str) -> np.ndarray:
        return self.array[:, self.columns.index(name)]

    def column_dict(self) -> dict[str, np.ndarray]:
        return {name: self.array[:, i] for i, name in enumerate(self.columns)}

    def fields_fit(self) -> bool:
        """Every field of every instruction fits its encoding (``wait`` and ``signal``
        aside: synchronisation sets them)."""
        bounds = FIELD_BOUNDS[self.cls]
        probe = dict(self.template)
        probe.update(wait=0, signal=0)
        for name in self.names:
            probe[name] = 0
        try:
            isa.encode(instance(self.cls, probe))
        except ValueError:
            return False
        for i, name in enumerate(self.names):
            low, high = bounds[name]
            values = self.array[:, i]
            if len(values) and (values.min() < low or values.max() > high):
                return False
        return True

    def instructions(self, waits: np.ndarray, signals: np.ndarray) -> np.ndarray:
        """The instructions of this block (an object array, in row order) with their
        ``wait`` and ``signal`` masks (arrays indexed by program order).

        Equal instructions are one object: frozen instructions are values, and a layer
        repeats many of them (input loads again for every k tile when the input does not
        fit at once, COMPUTEs and POSTs on the same ring slots, ...).
        """
        ops = self.column("op")
        k = len(self.names)
        table = np.column_stack([self.array[:, :k], waits[ops], signals[ops]])
        if self.cls is not isa.Store and len(table) > 1:  # every STORE has its own bytes
            first, which = isa.distinct_rows(table)
            if first is not None and 2 * len(first) < len(table):
                return self._make(table[first].tolist())[which]
        return self._make(table.tolist())

    def _make(self, rows: list[list[int]]) -> np.ndarray:
        """Instructions of the template with the fields ``names`` + (wait, signal) of every
        row."""
        names = (*self.names, "wait", "signal")
        template, cls = self.template, self.cls
        new, set_dict = object.__new__, object.__setattr__
        out = []
        append = out.append
        for row in rows:
            fields = template.copy()  # keeps the field order of the template
            fields.update(zip(names, row, strict=True))
            instr = new(cls)
            set_dict(instr, "__dict__", fields)
            append(instr)
        made = np.empty(len(out), dtype=object)
        made[:] = out
        return made

    def ranges(self) -> list[Access]:
        """This block's accesses, every ``lo``/``hi`` an array of one value per instruction."""
        columns = self.column_dict()
        n = len(self.array)
        out = []
        for space, kind, lo, hi in self.accesses(columns):
            lo = lo if isinstance(lo, np.ndarray) else np.full(n, lo, dtype=np.int64)
            hi = hi if isinstance(hi, np.ndarray) else np.full(n, hi, dtype=np.int64)
            out.append((space, kind, lo, hi))
        return out


def runs(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elements laid out in consecutive runs of ``counts[i]``: per element, its run and its
    index within the run."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, np.arange(len(owner)) - starts(counts)[owner]


def starts(counts: np.ndarray) -> np.ndarray:
    """Where each of consecutive runs of ``counts[i]`` elements starts (exclusive sums)."""
    return np.cumsum(counts) - counts


def instance(cls: type[Instruction], fields: dict) -> Instruction:
    """An instruction with exactly ``fields`` (no ``__init__``: they are checked elsewhere)."""
    instr = object.__new__(cls)
    object.__setattr__(instr, "__dict__", fields)
    return instr


class OpLog:
    """The abstract instructions of one compilation, in blocks; :attr:`index` hands out the
    program-order index of the next instruction."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._counter = itertools.count()
        self.index: Callable[[], int] = self._counter.__next__

    def take(self, count: int) -> int:
        """Hand out ``count`` (at least one) consecutive indices at once; returns the first."""
        if count < 1:
            raise ValueError(f"take({count})")
        first = self.index()
        if count > 1:
            collections.deque(itertools.islice(self._counter, count - 1), maxlen=0)
        return first

    def block(
        self,
        template: Instruction,
        names: tuple[str, ...],
        aux: tuple[str, ...],
        accesses: Accesses,
    ) -> Block:
        block = Block(template, names, aux, accesses)
        self.blocks.append(block)
        return block

    def seal(self) -> None:
        for block in self.blocks:
            block.seal()

    def __len__(self) -> int:
        return sum(len(b) for b in self.blocks)

    def fields_fit(self) -> bool:
        """Every field of every instruction fits its encoding (checked on whole columns;
        ``wait`` and ``signal`` always fit)."""
        self.seal()
        return all(block.fields_fit() for block in self.blocks if len(block))

    def ops(self) -> list[Op]:
        """Every instruction (``wait``/``signal`` zero) with its ranges, in program order:
        the input of the reference synchroniser."""
        self.seal()
        count = len(self)
        zeros = np.zeros(count, dtype=np.int64)
        ops: list[Op | None] = [None] * count
        for block in self.blocks:
            if not len(block):
                continue
            instrs = block.instructions(zeros, zeros).tolist()
            ranges = block.ranges()
            for row, (index, instr) in enumerate(
                zip(block.column("op").tolist(), instrs, strict=True)
            ):
                reads = [(s, int(lo[row]), int(hi[row])) for s, k, lo, hi in ranges if k == READ]
                writes = [(s, int(lo[row]), int(hi[row])) for s, k, lo, hi in ranges if k == WRITE]
                ops[index] = Op(instr, reads, writes)
        return ops
