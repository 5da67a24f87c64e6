"""Instruction layouts: :mod:`accel.isa` encodings as :mod:`amaranth.lib.data` structs.

:data:`accel.isa.FIELDS` packs every instruction from bit 0 upwards in field order, so a
:class:`~amaranth.lib.data.StructLayout` with the same members in the same order *is* the
binary encoding: a view of the low :attr:`~amaranth.lib.data.Layout.size` bits of an encoded
instruction (``int.from_bytes(accel.isa.encode(instr), "little")``) reads every field, signed
fields sign-extended. Nothing here repeats a field width; change the ISA and the RTL follows.
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from accel import isa

__all__ = ["COMPUTE_LAYOUT", "POST_LAYOUT", "instruction_layout"]


def instruction_layout(cls: type[isa.Instruction]) -> data.StructLayout:
    """The struct layout of one instruction class, bit-identical to :func:`accel.isa.encode`.

    Raises
    ------
    TypeError
        If ``cls`` is not an instruction class of :data:`accel.isa.FIELDS`.
    """
    if cls not in isa.FIELDS:
        raise TypeError(f"instruction class must be one of {list(isa.FIELDS)}, not {cls!r}")
    return data.StructLayout(
        {
            name: signed(width) if is_signed else unsigned(width)
            for name, width, is_signed in isa.FIELDS[cls]
        }
    )


#: A decoded COMPUTE instruction (the window generator's input).
COMPUTE_LAYOUT = instruction_layout(isa.Compute)
#: A decoded POST instruction.
POST_LAYOUT = instruction_layout(isa.Post)
