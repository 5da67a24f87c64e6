# amaranth: UnusedElaboratable=no
"""hdl.fetch and accel.timing.Fetch: the arguments (the behaviour is in
tests/test_equivalence_axi_fetch.py, the whole AXI top against the cycle model)."""

from __future__ import annotations

import pytest
from amaranth.hdl import Fragment

from accel import config as cfg
from accel.timing import Fetch
from hdl.axi_master import ReadSignature
from hdl.axi_top import AxiAccelerator, AxiLiteAccelerator
from hdl.fetch import InstructionFetch
from hdl.flow.generate import verilog
from tests.hdl_support import assert_lints_clean


def test_fetch_defaults_and_beats():
    assert Fetch() == Fetch(depth=8, width=64)
    assert [Fetch(width=w).beats() for w in (4, 16, 64, 128)] == [16, 4, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"depth": 3}, ValueError, "fetch depth = 3 must be a power of two from 1 to 65536"),
        ({"depth": 0}, ValueError, "fetch depth = 0 must be a power of two from 1 to 65536"),
        ({"width": 2}, ValueError, "fetch width = 2 must be a power of two from 4 to 128"),
        ({"width": 256}, ValueError, "fetch width = 256 must be a power of two from 4 to 128"),
        ({"depth": True}, TypeError, "fetch depth must be an int, not True"),
        ({"width": 8.0}, TypeError, "fetch width must be an int, not 8.0"),
    ],
)
def test_fetch_rejects(kwargs, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        Fetch(**kwargs)


def test_instruction_fetch_ports():
    unit = InstructionFetch(cfg.preset("tiny"), Fetch(depth=4, width=16))
    assert unit.fetch == Fetch(depth=4, width=16)
    assert unit.axi.signature == ReadSignature(16)
    members = unit.signature.members
    assert {"start", "busy", "imem_load", "fetched_store", "fire_post", "compute_base"} <= set(
        members
    )
    Fragment.get(unit, None)


def test_instruction_fetch_rejects():
    tiny = cfg.preset("tiny")
    with pytest.raises(TypeError, match=r"^fetch must be an accel\.timing\.Fetch, not 8$"):
        InstructionFetch(tiny, 8)
    with pytest.raises(ValueError, match="latency >= 1"):
        InstructionFetch(tiny.replace(dram={"latency": 0}), Fetch())
    with pytest.raises(ValueError, match="fetch depth = 3"):
        AxiAccelerator(tiny, fetch=Fetch(depth=3))


def test_the_tops_with_and_without_the_fetch():
    tiny = cfg.preset("tiny")
    axi = AxiAccelerator(tiny, fetch=Fetch(depth=2))
    assert axi.fetch == Fetch(depth=2)
    default = AxiAccelerator(tiny)
    assert default.fetch == Fetch()
    names = set(axi.signature.members)
    assert "m_axi_insn" in names and not any(n.startswith(("imem_", "fetched_")) for n in names)
    lite = AxiLiteAccelerator(tiny)
    assert lite.fetch is None
    assert "imem_load" in lite.signature.members and "m_axi_insn" not in lite.signature.members
    for top in (axi, default, lite):
        Fragment.get(top, None)


def test_the_axi_top_with_the_fetch_lints_clean(tmp_path):
    top = AxiAccelerator(cfg.preset("tiny"), fetch=Fetch(depth=4, width=16))
    assert_lints_clean(verilog(top, "axi_top"), "axi_top", tmp_path)
