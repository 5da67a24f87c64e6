# amaranth: UnusedElaboratable=no
"""The controller and the top: argument checks, and the in-flight limit as a flagged
departure from the contract (slower, never wrong)."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config as cfg
from accel.compiler import compile
from hdl.controller import Controller
from hdl.flow import amaranth_sim
from hdl.top import Accelerator
from tests.layers import conv_qnet, conv_reference, random_input

TINY = cfg.preset("tiny")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"config": "tiny"}, TypeError, "config must be an AccelConfig, not 'tiny'"),
        ({"inflight": 2.0}, TypeError, "in-flight queue depth must be an int, not 2.0"),
        ({"inflight": True}, TypeError, "in-flight queue depth must be an int, not True"),
        ({"inflight": 1}, ValueError, "in-flight queue depth must be >= 2, not 1"),
    ],
)
def test_controller_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Controller(**{"config": TINY, **kwargs})


def test_accelerator_rejects_bad_arguments():
    with pytest.raises(TypeError, match="config must be an AccelConfig"):
        Accelerator(None)
    with pytest.raises(ValueError, match="LOAD descriptor queue depth must be >= 1, not 0"):
        Accelerator(TINY, load_queue=0)
    with pytest.raises(ValueError, match="in-flight queue depth must be >= 2, not 0"):
        Accelerator(TINY, inflight=0)


def test_a_full_inflight_queue_delays_grants_flags_stalled_and_loses_nothing():
    rng = np.random.default_rng(3)
    qnet = conv_qnet(rng, c=8, k=4, hw=(5, 5), kernel=(3, 3), padding=(1, 1, 1, 1))
    program = compile(qnet, TINY)
    x = random_input(rng, qnet)
    image = program.make_image({"input": x})
    model = sim.run(program, image)
    rtl = amaranth_sim.run(program, image, inflight=2, max_cycles=4 * model.total_cycles)
    np.testing.assert_array_equal(rtl.outputs["conv"], conv_reference(qnet, x), strict=True)
    assert rtl.counters["stalled"] == 1
    later = [
        (engine, i)
        for engine, starts in rtl.start.items()
        for i, start in enumerate(starts)
        if start > model.start[engine][i]
    ]
    assert later, "a full queue must delay some grant"
    assert all(
        start >= model.start[engine][i]
        for engine, starts in rtl.start.items()
        for i, start in enumerate(starts)
    )
    assert rtl.total_cycles >= model.total_cycles
