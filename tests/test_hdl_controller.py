# amaranth: UnusedElaboratable=no
"""The controller and the top: argument checks (the in-flight limit as a flagged departure
from the contract, slower than the model and never wrong, is in
tests/test_equivalence_rtl.py)."""

from __future__ import annotations

import pytest
from amaranth.hdl import Fragment

from accel import config as cfg
from hdl.controller import Controller
from hdl.top import Accelerator

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


def test_only_an_aborting_controller_has_the_abort_input():
    """The raw top has no ``abort`` (its Verilog is the one place and route measures); the
    AXI tops build the controller with it (tests/test_equivalence_axi_errors.py)."""
    assert "abort" not in Controller(TINY).signature.members
    assert Controller(TINY, abort=True).signature.members["abort"].flow.name == "In"
    plain, aborting = Accelerator(TINY), Accelerator(TINY, abort=True)
    assert "abort" not in plain.signature.members
    assert aborting.controller.abortable
    for top in (plain, aborting):  # so that the controllers they built are used
        Fragment.get(top, None)
