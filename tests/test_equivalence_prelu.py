# amaranth: UnusedElaboratable=no
"""The PRelu POST (``Post.prelu``): hdl.postproc against sim.postproc row by row, and whole
PRelu layers through the RTL top (Amaranth simulator and Verilator) against the cycle model
and the int8 golden model, bit- and cycle-exact.

A PRelu lane whose ``acc + bias`` is negative is requantised with the multiplier and shift
packed in the high bits of its ``shift`` parameter (:func:`accel.numerics.pack_prelu_shift`);
the rows here draw both sides' parameters at random, any sign of the negative multiplier,
with the edge cases (a total of 0 and -1, INT32_MIN, a bias add that wraps, the saturating
``INT32_MIN * INT32_MIN``) listed by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accel import executor, numerics, synthetic
from accel.compiler import compile
from accel.isa import Engine, Post
from sim import postproc as model_postproc
from tests.layers import prelu_qnet
from tests.test_equivalence_rtl import SETUPS, check
from tests.test_hdl_postproc import HYPOTHESIS, LANES, looked_up, row, run_rows

INT32_MIN, INT32_MAX = numerics.INT32_MIN, numerics.INT32_MAX


def prelu_row(acc, bias, multiplier, shift, multiplier_neg, shift_neg, **kw) -> dict:
    words = numerics.pack_prelu_shift(
        np.broadcast_to(shift, LANES),
        np.broadcast_to(multiplier_neg, LANES),
        np.broadcast_to(shift_neg, LANES),
    )
    r = row(acc, bias, multiplier, words.astype(np.int32), **kw)
    r["prelu"] = 1
    return r


def reference(r: dict) -> list[int]:
    post = Post(
        mode=r["mode"], out_zero_point=r["out_zero_point"], act_min=r["act_min"],
        act_max=r["act_max"], prelu=r.get("prelu", 0),
    )  # fmt: skip
    params = np.array([[p["bias"], p["multiplier"], p["shift"]] for p in r["params"]])
    acc = np.array([r["acc"]], dtype=np.int64)
    return [int(v) for v in model_postproc.postprocess(post, acc, params)[0]]


EDGES = [
    # acc, bias, M, shift, M_neg, shift_neg
    ([0, -1, 1, -2], 0, 2**30, 1, -(2**30), 1),
    ([-1000, 1000, -7, 7], 0, 2**31 - 1024, 3, 2**30 + 1024, 2),
    ([INT32_MIN, -5, 5, INT32_MAX], 0, 2**30, 31, INT32_MIN, 0),  # saturating SRDHM
    ([INT32_MAX, INT32_MIN, 0, -1], 10, 2**30, 4, -(2**31) + 1024, 5),  # the bias add wraps
    ([-300, -301, 300, 301], -1, 2**30, 0, 0, 0),  # slope 0
    ([-(2**20), 2**20, -3, 3], 0, 2**30, 10, 2**31 - 1024, 31),
]


def test_prelu_edge_rows_equal_the_model():
    rows = [prelu_row(*case) for case in EDGES]
    rows += [prelu_row(*case, zp=-7, lo=-100, hi=90) for case in EDGES]
    for r, (_, word), case in zip(rows, run_rows(rows), EDGES * 2, strict=True):
        assert word == reference(r), case
    assert reference(rows[0]) != reference({**rows[0], "prelu": 0})  # the flag matters


@st.composite
def prelu_rows(draw):
    int32 = st.one_of(
        st.sampled_from([INT32_MIN, -1, 0, 1, INT32_MAX]), st.integers(INT32_MIN, INT32_MAX)
    )
    lo = draw(st.integers(-128, 127))
    return prelu_row(
        [draw(int32) for _ in range(LANES)],
        [draw(int32) for _ in range(LANES)],
        [draw(st.integers(2**30, 2**31 - 1)) for _ in range(LANES)],
        [draw(st.integers(0, 31)) for _ in range(LANES)],
        [draw(st.integers(-(2**21), 2**21 - 1)) * 1024 for _ in range(LANES)],
        [draw(st.integers(0, 31)) for _ in range(LANES)],
        zp=draw(st.integers(-128, 127)),
        lo=lo,
        hi=draw(st.integers(lo, 127)),
        lut=draw(st.integers(0, 1)),
    )


@HYPOTHESIS
@given(
    st.lists(
        st.one_of(prelu_rows(), prelu_rows().map(lambda r: {**r, "prelu": 0})),
        min_size=1,
        max_size=16,
    )
)
def test_prelu_rows_equal_the_model(rows):
    """Random PRelu rows mixed with the same rows without the flag, back to back."""
    for r, (_, word) in zip(rows, run_rows(rows), strict=True):
        assert word == looked_up(r, reference(r))


PRELU_LAYERS = {
    "standalone, several channel tiles": (1, 12, (4, 6), False),
    "after a conv": (2, 8, (5, 5), True),
}


@pytest.mark.parametrize(("config", "backend"), SETUPS)
@pytest.mark.parametrize("name", list(PRELU_LAYERS))
def test_prelu_layer_bit_and_cycle_exact(name, config, backend):
    qnet = prelu_qnet(*PRELU_LAYERS[name])
    program = compile(qnet, config)
    assert any(post.prelu for post in program.streams[Engine.POST])
    inputs = synthetic.random_int8_inputs(qnet)
    expected = executor.run_network(qnet, inputs)
    assert set(expected) == {"prelu"}
    check(program, program.make_image(inputs), expected, backend)
