# amaranth: UnusedElaboratable=no
"""hdl.post against sim.postproc: every stream of tests/test_hdl_post.py's bench (random,
hand-written, addresses that wrap) writes, cycle for cycle, the words of the model's
``postprocess``."""

from __future__ import annotations

import pytest

from sim import postproc as model_postproc
from tests.test_hdl_post import (
    HAND_WRITTEN,
    RANDOM_STREAMS,
    check_hand_written,
    check_random,
    run_wrapping,
)


@RANDOM_STREAMS
def test_random_streams_write_the_model_words(shape, seed, back_to_back):
    check_random(shape, seed, back_to_back, reference=model_postproc.postprocess)


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_streams_write_the_model_words(name):
    check_hand_written(name, reference=model_postproc.postprocess)


def test_wrapping_addresses_write_the_model_words():
    run, writes = run_wrapping(model_postproc.postprocess)
    assert run.writes == writes
