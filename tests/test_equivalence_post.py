# amaranth: UnusedElaboratable=no
"""hdl.post against sim.postproc: every stream of tests/test_hdl_post.py's bench (random,
hand-written, addresses that wrap) writes, cycle for cycle, the words of the model's
``postprocess``."""

from __future__ import annotations

import numpy as np
import pytest

from accel.isa import Post, PostMode
from sim import postproc as model_postproc
from tests.test_hdl_post import CONFIGS, check, random_offers, random_post, run_wrapping

HAND_WRITTEN = {
    "docstring": (
        "3x4",
        [
            Post(acc_base=4, count=3, param_base=1, out_base=2),
            Post(mode=PostMode.PASS, acc_base=20, count=1, param_base=5, out_base=9, act_min=0),
        ],
        [0, 0],
        5,
    ),
    "four_instructions": (
        "2x2",
        [
            Post(acc_base=0, count=1, param_base=0, out_base=5, out_zero_point=-9),
            Post(mode=PostMode.PASS, acc_base=1, count=1, param_base=3, out_base=6, act_max=0),
            Post(acc_base=2, count=1, param_base=5, out_base=5, act_min=7, act_max=7),
            Post(mode=PostMode.PASS, acc_base=3, count=2, param_base=2, out_base=7, act_min=-3),
        ],
        [0, 0, 0, 0],
        6,
    ),
    "granted_while_busy": (
        "4x4",
        [Post(count=8, out_base=0), Post(acc_base=9, count=2, out_base=8)],
        [2, 4],
        7,
    ),
}


@pytest.mark.parametrize("back_to_back", [True, False], ids=["back_to_back", "late_grants"])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", sorted(CONFIGS))
def test_random_streams_write_the_model_words(shape, seed, back_to_back):
    config = CONFIGS[shape]
    rng = np.random.default_rng([seed, back_to_back, config.array.cols, config.array.rows])
    posts = [random_post(rng, config) for _ in range(int(rng.integers(1, 5)))]
    offers = random_offers(rng, len(posts), back_to_back)
    check(config, posts, offers, seed, reference=model_postproc.postprocess)


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_streams_write_the_model_words(name):
    shape, posts, offers, seed = HAND_WRITTEN[name]
    check(CONFIGS[shape], posts, offers, seed, reference=model_postproc.postprocess)


def test_wrapping_addresses_write_the_model_words():
    run, writes = run_wrapping(model_postproc.postprocess)
    assert run.writes == writes
