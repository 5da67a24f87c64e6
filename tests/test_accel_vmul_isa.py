"""VMUL (VADD with ``mul``) and ``broadcast_b`` in the ISA, the window walk and the model's
vector unit (``docs/isa.md``)."""

import numpy as np
import pytest

from accel import isa, window
from accel.isa import Compute, ComputeMode
from sim import vector

VMUL = Compute(
    mode=ComputeMode.VADD, mul=1, out_h=2, out_w=3, tile_w=3, image_h=2, image_w=3, in_base=4,
    in_base_b=40, zero_point_a=-3, zero_point_b=127,
)  # fmt: skip


def test_mul_and_broadcast_are_the_last_compute_bits():
    plain = Compute(mode=ComputeMode.VADD, in_base_b=9, multiplier_a=1 << 30)
    flagged = isa.with_fields(plain, mul=1, broadcast_b=1)
    a, b = (int.from_bytes(isa.encode(i), "little") for i in (plain, flagged))
    assert a ^ b == (1 << 415) | (1 << 416)  # every other bit, hence every old program, as before
    assert isa.decode(isa.encode(flagged)) == flagged


def test_broadcast_b_reads_one_word_for_every_pixel():
    addr, valid = window.feed_addresses(isa.with_fields(VMUL, broadcast_b=1))
    assert addr[0].tolist() == [4, 5, 6, 7, 8, 9]
    assert addr[1].tolist() == [40] * 6 and valid.all()
    assert window.distinct_words(isa.with_fields(VMUL, broadcast_b=1)).tolist() == [
        4, 5, 6, 7, 8, 9, 40,
    ]  # fmt: skip
    same, _ = window.feed_addresses(VMUL)
    assert same[1].tolist() == [40, 41, 42, 43, 44, 45]


def test_broadcast_b_is_ignored_outside_vadd():
    pool = Compute(mode=ComputeMode.VSUM, out_w=3, tile_w=3, image_w=3, kernel_w=1)
    assert np.array_equal(
        window.feed_addresses(pool)[0],
        window.feed_addresses(isa.with_fields(pool, broadcast_b=1))[0],
    )


def test_vmul_model_is_the_exact_product():
    windows = np.array([[[-128, 0, 5]], [[-128, 127, 5]]])  # (passes, pixels=1, lanes=3)
    instr = isa.with_fields(VMUL, zero_point_a=127, zero_point_b=127)
    got = vector.vector_result(instr, windows, np.zeros((1, 3), np.int64))
    assert got.tolist() == [[65025, 0, (5 - 127) ** 2]]


def test_vmul_rejects_accumulate():
    with pytest.raises(ValueError, match=r"VMUL .* cannot accumulate"):
        vector.vector_result(
            isa.with_fields(VMUL, accumulate=1), np.zeros((2, 1, 2)), np.zeros((1, 2))
        )
