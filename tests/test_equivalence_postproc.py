# amaranth: UnusedElaboratable=no
"""hdl.postproc against sim.postproc: the rows of tests/test_hdl_postproc.py's bench (edge
cases, PASS mode, random rows with idle cycles between them) come out as the model's
``postprocess`` gives them (multipliers in its range, [2**30, 2**31)), then the model's
table lookup (:func:`accel.numerics.table_lookup`, as :func:`sim.postproc.execute` applies it)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from accel import numerics
from accel.isa import TABLE_SLOTS, Post
from sim import postproc as model_postproc
from tests.test_hdl_postproc import (
    EDGES,
    HYPOTHESIS,
    TABLES,
    pass_rows,
    row,
    rows_strategy,
    run_rows,
)


def reference(r: dict) -> list[int]:
    """The model's post-processor on one row (multipliers in requantize's range)."""
    post = Post(
        mode=r["mode"], out_zero_point=r["out_zero_point"], act_min=r["act_min"],
        act_max=r["act_max"],
    )  # fmt: skip
    params = np.array([[p["bias"], p["multiplier"], p["shift"]] for p in r["params"]])
    acc = np.array([r["acc"]], dtype=np.int64)
    word = model_postproc.postprocess(post, acc, params)[0]
    if r["lut"]:
        word = numerics.table_lookup(word, TABLES[r["table"] % TABLE_SLOTS].astype(np.int8))
    return [int(v) for v in word]


def test_postproc_edge_cases_equal_the_model():
    rows = [row(a, b, m, s, zp=zp) for a, b, m, s, zp in EDGES]
    checked = 0
    for r, (_, word), case in zip(rows, run_rows(rows), EDGES, strict=True):
        if r["params"][0]["multiplier"] >= 2**30:
            assert word == reference(r), case
            checked += 1
    assert checked > len(EDGES) // 2


def test_postproc_pass_mode_equals_the_model():
    rows = pass_rows()
    for r, (_, word) in zip(rows, run_rows(rows), strict=True):
        assert word == reference(r)


@HYPOTHESIS
@given(
    st.lists(rows_strategy(any_multiplier=False), min_size=1, max_size=24),
    st.lists(st.integers(0, 2), min_size=24, max_size=24),
)
def test_postproc_equals_the_model(rows, gaps):
    out = run_rows(rows, gaps[: len(rows)])
    for r, (_, word) in zip(rows, out, strict=True):
        assert word == reference(r)
