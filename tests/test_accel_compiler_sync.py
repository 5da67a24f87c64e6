"""The column-wise synchroniser (``accel.compiler.sync.synchronise``) gives exactly the streams
of the reference (``synchronise_reference``, one instruction and one range at a time): on
random abstract programs, on zoo programs, and where it must fall back to the reference."""

from __future__ import annotations

import numpy as np
import pytest

from accel import config, isa
from accel.compiler import lower, ops, plan, sync
from accel.compiler.ops import READ, WRITE, OpLog
from tests.layers import zoo_qnet

#: (space, writer, reader) of the random programs: every space has one writer engine and one
#: reader engine, as lowering guarantees.
SPACES = [
    ("in", isa.Engine.LOAD, isa.Engine.COMPUTE),
    ("w", isa.Engine.LOAD, isa.Engine.COMPUTE),
    ("p", isa.Engine.LOAD, isa.Engine.POST),
    ("acc", isa.Engine.COMPUTE, isa.Engine.POST),
    ("out", isa.Engine.POST, isa.Engine.STORE),
    ("dram:a", isa.Engine.STORE, isa.Engine.LOAD),
    ("dram:b", isa.Engine.STORE, isa.Engine.LOAD),
]
TEMPLATES = {
    isa.Engine.LOAD: isa.Load(),
    isa.Engine.COMPUTE: isa.Compute(),
    isa.Engine.POST: isa.Post(),
    isa.Engine.STORE: isa.Store(),
}


def random_log(seed: int, count: int, size: int, spaces=SPACES) -> OpLog:
    """``count`` instructions, each reading and writing random ranges of ``size`` words of
    the spaces its engine reads and writes, one block per (engine, accessed spaces)."""
    rng = np.random.default_rng(seed)
    log = OpLog()
    blocks = {}
    for _ in range(count):
        engine = isa.Engine(int(rng.integers(len(isa.Engine))))
        chosen = []
        for space, writer, reader in spaces:
            if engine in (writer, reader) and rng.random() < 0.7:
                chosen.append((space, WRITE if engine == writer else READ))
        key = (engine, tuple(chosen))
        if key not in blocks:

            def accesses(c, chosen=chosen):
                return [
                    (space, kind, c[f"lo{i}"], c[f"hi{i}"])
                    for i, (space, kind) in enumerate(chosen)
                ]

            aux = tuple(f"{b}{i}" for i in range(len(chosen)) for b in ("lo", "hi"))
            blocks[key] = log.block(TEMPLATES[engine], ("layer",), aux, accesses)
        row = [int(rng.integers(4))]
        for _ in chosen:
            lo = int(rng.integers(size))
            row += [lo, lo + 1 + int(rng.integers(size // 4 + 1))]
        blocks[key].rows.extend((*row, log.index()))
    return log


@pytest.mark.parametrize(
    ("seed", "count", "size"),
    [(seed, count, size) for seed in range(6) for count, size in [(40, 8), (300, 64), (2000, 256)]],
)
def test_random_programs_give_the_reference_streams(seed, count, size):
    log = random_log(seed, count, size)
    assert sync.synchronise(log) == sync.synchronise_reference(log.ops())


@pytest.mark.parametrize(
    ("model", "size", "preset"),
    [("tinynet", None, "tiny"), ("lenet5", None, "tiny"), ("resnet18", 64, "edge")],
)
def test_zoo_programs_give_the_reference_streams(model, size, preset):
    qnet = zoo_qnet(model, size)
    cfg = config.preset(preset)
    dram = plan.plan_dram(qnet, cfg, keep_tensors=False, keep=frozenset())
    log = lower.lower_network(qnet, cfg, dram).ops
    assert sync.synchronise(log) == sync.synchronise_reference(log.ops())


def test_two_writer_engines_fall_back_to_the_reference():
    spaces = [*SPACES, ("in", isa.Engine.POST, isa.Engine.COMPUTE)]  # POST writes "in" too
    log = random_log(1, 300, 32, spaces)
    assert sync.synchronise(log) == sync.synchronise_reference(log.ops())


def test_a_pair_without_semaphore_is_the_reference_error():
    spaces = [("x", isa.Engine.COMPUTE, isa.Engine.STORE)]
    log = random_log(2, 50, 8, spaces)
    with pytest.raises(AssertionError, match="no semaphore from") as reference:
        sync.synchronise_reference(log.ops())
    with pytest.raises(AssertionError) as fast:
        sync.synchronise(log)
    assert str(fast.value) == str(reference.value)


def test_latest_overlapping_by_brute_force():
    rng = np.random.default_rng(5)
    t_op = np.sort(rng.choice(400, 150, replace=False))
    q_op = rng.integers(400, size=200)
    t_lo, q_lo = rng.integers(50, size=150), rng.integers(50, size=200)
    t_hi, q_hi = t_lo + rng.integers(1, 8, size=150), q_lo + rng.integers(1, 30, size=200)
    expected = [
        max(
            [
                int(t)
                for t, lo, hi in zip(t_op, t_lo, t_hi, strict=True)
                if t < q and lo < qh and hi > ql
            ],
            default=-1,
        )
        for q, ql, qh in zip(q_op, q_lo, q_hi, strict=True)
    ]
    got = sync.latest_overlapping(q_op, q_lo, q_hi, t_op, t_lo, t_hi)
    assert got.tolist() == expected


def test_fields_fit_checks_the_template_and_every_row():
    def none(c):
        return []

    log = OpLog()
    block = log.block(isa.Load(run_bytes=7), ("dram_addr", "outer_count"), (), none)
    block.rows.extend((1 << 32 - 1, 1, log.index()))
    assert log.fields_fit()
    log.blocks[0].array[0, 0] = 1 << 32  # dram_addr: 32 bits
    assert not log.fields_fit()
    log = OpLog()
    block = log.block(isa.Load(run_bytes=1 << 16), ("dram_addr",), (), none)
    block.rows.extend((0, log.index()))
    assert not log.fields_fit()  # run_bytes, from the template: 16 bits
    log = OpLog()
    block = log.block(isa.Compute(), ("origin_h",), (), none)
    block.rows.extend((-(1 << 15), log.index()))
    assert log.fields_fit()
    block.array[0, 0] = -(1 << 15) - 1  # origin_h: 16 bits, signed
    assert not log.fields_fit()


def test_a_block_rejects_fields_it_does_not_have():
    with pytest.raises(AssertionError, match="Load has no varying field"):
        ops.Block(isa.Load(), ("mode",), (), lambda c: [])


@pytest.mark.parametrize("seed", range(3))
def test_spaces_searched_alone_give_the_reference_streams(seed, monkeypatch):
    monkeypatch.setattr(sync, "_ALONE", 0)  # every space alone, as the large ones of big programs
    log = random_log(seed, 2000, 256)
    assert sync.synchronise(log) == sync.synchronise_reference(log.ops())


@pytest.mark.parametrize("seed", range(3))
def test_latest_overlapping_of_many_queries_by_brute_force(seed):
    """Many queries on a few ranges (each range scans the targets between its first and
    last query, and looks backwards for the latest before them), and the others."""
    rng = np.random.default_rng(seed)
    t_op = np.sort(rng.choice(20000, 3000, replace=False))
    q_op = np.sort(rng.integers(20000, size=4000))
    t_lo = rng.integers(64, size=3000)
    t_hi = t_lo + rng.integers(1, 4, size=3000)
    # Half the queries on four wide ranges, used late in the program; the rest narrow.
    wide = rng.random(4000) < 0.5
    q_lo = np.where(wide, rng.integers(4, size=4000) * 16, rng.integers(64, size=4000))
    q_hi = q_lo + np.where(wide, 16, rng.integers(1, 3, size=4000))
    q_op = np.where(wide, q_op // 2 + 10000, q_op)
    overlap = (t_lo[None, :] < q_hi[:, None]) & (t_hi[None, :] > q_lo[:, None])
    earlier = t_op[None, :] < q_op[:, None]
    expected = np.where(overlap & earlier, t_op[None, :], -1).max(axis=1)
    got = sync.latest_overlapping(q_op, q_lo, q_hi, t_op, t_lo, t_hi)
    assert got.tolist() == expected.tolist()
