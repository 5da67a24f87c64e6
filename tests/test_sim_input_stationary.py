"""The input-stationary dataflow (``array.dataflow = "is"``, ``accel.timing``,
INPUT-STATIONARY) on the cycle model: every dense ARRAY COMPUTE of an "is" machine carries
``is_ = 1`` and reads its weights in the transposed layout, the outputs are bit-exact to the
golden model, the fast mode's closed form gives the trace mode's cycle-stepped start and done
cycles, and the program check rejects an ``is_`` instruction the machine cannot run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import sim
from accel import config, graph, isa, timing
from accel.compiler import compile
from accel.config import AccelConfig
from accel.isa import ComputeMode, Engine
from tests.layers import conv_qnet, conv_reference, quantized, random_input, zoo_qnet
from tests.test_sim_conv import small_configs
from tests.test_sim_conv_transpose import transposed
from tests.test_sim_output_stationary import (
    _edited,
    _first,
    check_flags,
    dense_layers,
    run_conv,
    run_network,
)


def is_config(base: AccelConfig) -> AccelConfig:
    return base.replace(array={"dataflow": "is"})


#: The "is" tiny preset, and an "is" 8x8 array with tiny's buffers.
IS_TINY = is_config(config.preset("tiny"))
IS_8X8 = IS_TINY.replace(name="is8x8", array={"rows": 8, "cols": 8})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layer=dense_layers(),
    seed=st.integers(0, 2**16),
    machine=st.sampled_from([IS_TINY, IS_8X8]),
)
def test_random_conv_bit_exact_and_fast_equals_trace_on_is_machines(layer, seed, machine):
    run_conv(layer, machine, seed, trace=True)


@st.composite
def square_configs(draw):
    base = draw(small_configs())
    n = min(base.array.rows, base.array.cols)
    try:
        return base.replace(array={"rows": n, "cols": n})
    except ValueError:  # a buffer sized for the other shape: not this test's subject
        assume(False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=dense_layers(), config=square_configs(), seed=st.integers(0, 2**16))
def test_random_conv_fast_equals_trace_on_random_is_configs(layer, config, seed):
    run_conv(layer, is_config(config), seed, trace=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=transposed())
def test_random_transposed_convolutions_bit_exact_on_is_tiny(network):
    qnet = quantized(network)
    run_network(qnet, IS_TINY)


def test_fully_connected_layers_run_input_stationary():
    net = graph.Network("fc")
    x = net.add("input", graph.Input((20, 1, 1)))
    h = net.add("fc1", graph.Linear(20, 13, activation="relu"), [x])
    net.add("fc2", graph.Linear(13, 7), [h])
    qnet = quantized(net)
    program, _, fast = run_network(qnet, IS_8X8)
    trace = sim.run(program, mode="trace", compute_outputs=False)
    assert trace.instruction_times() == fast.instruction_times()


@pytest.mark.parametrize(
    ("name", "size"), [("tinynet", None), ("lenet5", 32), ("resnet18", 32), ("mobilenet_v2", 32)]
)
def test_zoo_networks_bit_exact_on_is_tiny(name, size):
    qnet = zoo_qnet(name, size)
    *_, result = run_network(qnet, IS_TINY)
    assert sum(layer.cycles for layer in result.layers) == result.total_cycles
    assert 0 < result.utilization <= 1


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (graph.Conv2d(8, 24, 3, padding=1, activation="relu"), (8, 6, 6)),  # resident
        (graph.Linear(64, 200), (64, 1, 1)),  # streamed weights and parameters
    ],
)
def test_k_groups_bit_exact_and_fast_equals_trace(layer, shape):
    """Layers of many k tiles stream several per stationary tile (``Compute.k_extra``), each
    k tile's sums in its own accumulator rows, POSTed with its own parameters."""
    net = graph.Network("k")
    x = net.add("input", graph.Input(shape))
    net.add("layer", layer, [x])
    program, _, fast = run_network(quantized(net), IS_TINY)
    assert any(c.k_extra for c in program.streams[Engine.COMPUTE])
    trace = sim.run(program, mode="trace", compute_outputs=False)
    assert trace.instruction_times() == fast.instruction_times()


def test_whole_network_fast_equals_trace_on_is_tiny():
    """A whole network mixes the units (IS array, vector pools and adds): the unit-switch
    rule, the transposer and the weight loader, stepped, give the closed form's times."""
    program = compile(zoo_qnet("tinynet", None), IS_TINY)
    fast = sim.run(program, compute_outputs=False)
    trace = sim.run(program, compute_outputs=False, mode="trace")
    assert trace.instruction_times() == fast.instruction_times()
    assert dataclasses.replace(trace, backend=fast.backend) == fast


def test_is_depthwise_and_vector_units_switch_alike_in_fast_and_trace():
    net = graph.Network("mix")
    x = net.add("input", graph.Input((6, 9, 9)))
    a = net.add("c1", graph.Conv2d(6, 8, 3, padding=1, activation="relu"), [x])
    b = net.add("dw", graph.Conv2d(8, 8, 3, padding=1, groups=8, activation="relu"), [a])
    c = net.add("c2", graph.Conv2d(8, 5, 1), [b])
    d = net.add("pool", graph.MaxPool2d(2, 2), [c])
    net.add("c3", graph.Conv2d(5, 4, 3, padding=1), [d])
    qnet = quantized(net)
    program, image, fast = run_network(qnet, IS_TINY)
    units = {timing.compute_unit(instr) for instr in program.streams[Engine.COMPUTE]}
    assert units == {timing.IS_UNIT, timing.WS_UNIT, timing.VECTOR_UNIT}
    trace = sim.run(program, image, mode="trace", compute_outputs=False)
    assert trace.instruction_times() == fast.instruction_times()


def _naive_schedule(tiles, take, stream_free, last_weight_load, last_feed, rows):
    """The contract's recurrences, tile by tile."""
    rd, wl, f = [], [], []
    for j in range(tiles):
        before = wl[j - 2] if j >= 2 else -(1 << 40)
        rd.append(take if j == 0 else max(rd[-1] + rows, before + rows))
        wl.append(
            max(
                rd[j] + rows + 1,
                (wl[-1] if j else last_weight_load) + rows,
                f[-1] if j else last_feed,
            )
        )
        f.append(max(wl[j] + 1, f[-1] + rows if j else stream_free))
    return f[0], wl[-1], f[-1]


@settings(max_examples=300, deadline=None)
@given(
    tiles=st.integers(1, 200),
    take=st.integers(0, 40),
    stream_free=st.integers(0, 80),
    last_weight_load=st.one_of(st.just(-(1 << 40)), st.integers(-10, 60)),
    last_feed=st.one_of(st.just(-(1 << 40)), st.integers(-10, 60)),
    rows=st.sampled_from([2, 3, 4, 8, 16, 32]),
)
def test_the_periodic_shortcut_equals_the_recurrences(
    tiles, take, stream_free, last_weight_load, last_feed, rows
):
    args = (tiles, take, stream_free, last_weight_load, last_feed, rows)
    assert timing.is_schedule(*args) == _naive_schedule(*args)


def test_the_is_schedule_of_one_instruction_by_hand():
    """4x4 array, one pass, 6 pixels: G = 2 tiles. rd = take, take + 4; the rows load from
    rd + 5; the second tile streams 4 cycles after the first."""
    machine = IS_TINY.replace(array={"rows": 4, "cols": 4})
    instr = isa.Compute(mode=ComputeMode.ARRAY, out_h=2, out_w=3, ct_count=1, is_=1)
    t = timing.compute_timing(instr, 10, timing.ComputeState(unit=timing.IS_UNIT), machine)
    take = 10 + timing.COMPUTE_DECODE
    assert t.take == take
    # wl[0] = take + 5, f[0] = take + 6; wl[1] = max(take + 9, take + 9, f[0]), f[1] = take + 10
    assert (t.first_feed, t.last_feed) == (take + 6, take + 10)
    assert t.done == (take + 10) + 3 + 4 + 3 + timing.ACC_LATENCY + 1
    assert (t.state.stream_free, t.state.front_free) == (take + 14, take + 13)
    # A weight-stationary instruction next switches units: it feeds no earlier than done.
    after = timing.compute_timing(dataclasses.replace(instr, is_=0), 0, t.state, machine)
    assert after.first_feed >= t.done


def test_the_tiler_charges_the_is_pass_cost():
    """ceil(T / cols) tiles per pass input-stationary, plus the transposer fill."""
    from accel.compiler.tiling import IS_TILE_EXTRA, Hardware, Window, estimate_cycles

    hw = Hardware.of(config.preset("tiny"))
    cols = hw.cols
    isw = dataclasses.replace(hw, is_=True)

    def compute(h, tile, **kw):
        zero = dataclasses.replace(h, dram_latency=0)
        return estimate_cycles(zero, (1, tile), Window(), 1, 1, 10, (1, tile), **kw)

    extra = compute(isw, 3 * cols) - compute(hw, 3 * cols)
    assert extra == pytest.approx(10 * 3 * IS_TILE_EXTRA + hw.rows + 1)
    assert compute(isw, cols + 1, depthwise=True) == compute(hw, cols + 1)


def test_a_wrongly_packed_is_program_fails_golden_equals_model():
    """The model reads IS weight words transposed: the same program with the weight-
    stationary layout's instructions relabelled ``is_`` computes other sums."""
    layer = dict(c=5, k=7, hw=(5, 5), kernel=(3, 3), stride=(1, 1), padding=(1, 1, 1, 1))
    qnet = conv_qnet(np.random.default_rng(3), **layer, dilation=(1, 1), groups=1)
    ws = compile(qnet, config.preset("tiny"))
    x = random_input(np.random.default_rng(4), qnet)
    streams = dict(ws.streams)
    streams[Engine.COMPUTE] = [
        dataclasses.replace(c, is_=int(c.mode == ComputeMode.ARRAY))
        for c in streams[Engine.COMPUTE]
    ]
    relabelled = dataclasses.replace(ws, config=IS_TINY, streams=streams)
    out = sim.run(relabelled, relabelled.make_image({"input": x})).outputs["conv"]
    assert not np.array_equal(out, conv_reference(qnet, x))


@pytest.fixture(scope="module")
def is_program():
    return compile(zoo_qnet("tinynet", None), IS_TINY)


def test_program_check_rejects_is_on_a_ws_machine():
    program = compile(zoo_qnet("tinyconv"), config.preset("tiny"))
    bad = _edited(program, 0, is_=1)
    with pytest.raises(ValueError, match=r"^COMPUTE\[0\] \(layer \d+\): is_ = 1 .* 'ws'$"):
        bad.validate()
    with pytest.raises(ValueError, match=r"COMPUTE\[0\].*is_ = 1"):
        sim.run(bad, compute_outputs=False)


def test_program_check_rejects_is_in_a_vector_mode(is_program):
    index = _first(is_program, lambda c: c.mode != ComputeMode.ARRAY)
    mode = ComputeMode(is_program.streams[Engine.COMPUTE][index].mode).name
    with pytest.raises(
        ValueError,
        match=rf"^COMPUTE\[{index}\] \(layer \d+\): is_ = 1 needs ARRAY mode, not "
        rf"mode = {mode}$",
    ):
        _edited(is_program, index, is_=1).validate()


def test_program_check_rejects_is_with_depthwise_or_os(is_program):
    index = _first(is_program, lambda c: c.is_)
    bad = _edited(is_program, index, depthwise=1, taps_h=1, taps_w=1, kernel_h=1, kernel_w=1)
    with pytest.raises(
        ValueError, match=rf"^COMPUTE\[{index}\] \(layer \d+\): is_ = 1 with depthwise = 1"
    ):
        bad.validate()
    with pytest.raises(ValueError, match=rf"^COMPUTE\[{index}\] \(layer \d+\): os = 1"):
        _edited(is_program, index, os=1).validate()


def test_program_check_rejects_is_on_a_non_square_array(is_program):
    index = _first(is_program, lambda c: c.is_)
    wide = is_program.config.replace(array={"cols": is_program.config.array.rows * 2})
    bad = dataclasses.replace(is_program, config=wide)
    with pytest.raises(
        ValueError, match=r"^COMPUTE\[\d+\] \(layer \d+\): is_ = 1 needs a square array"
    ):
        bad.validate()
    assert index >= 0


def test_program_check_rejects_k_tiles_without_is_or_with_overlapping_rows(is_program):
    index = _first(is_program, lambda c: c.is_)
    pixels = is_program.streams[Engine.COMPUTE][index].pixels
    with pytest.raises(
        ValueError, match=rf"^COMPUTE\[{index}\] \(layer \d+\): k_extra = 2 needs is_ = 1$"
    ):
        _edited(is_program, index, is_=0, k_extra=2, k_stride=pixels).validate()
    with pytest.raises(
        ValueError,
        match=rf"^COMPUTE\[{index}\] \(layer \d+\): k_stride = {pixels - 1} < {pixels} "
        r"pixels: the rows of its 2 k tiles overlap$",
    ):
        _edited(is_program, index, k_extra=1, k_stride=pixels - 1).validate()
    _edited(is_program, index, k_extra=1, k_stride=pixels).validate()


def test_compile_rejects_a_non_square_is_array():
    with pytest.raises(ValueError, match=r"array.dataflow = 'is' needs a square array"):
        compile(zoo_qnet("tinyconv"), IS_TINY.replace(array={"cols": 12}))


def test_is_programs_run_input_stationary_and_ws_programs_do_not(is_program):
    ws_program = compile(zoo_qnet("tinynet", None), config.preset("tiny"))
    assert not any(c.is_ for c in ws_program.streams[Engine.COMPUTE])
    check_flags(is_program, "is_")
    is_program.validate()


def test_is_feed_slots_and_stalls_add_up(is_program):
    from accel.backend import feeds
    from accel.timing import VECTOR_MIN_PASS
    from sim.controller import schedule

    sched = schedule(is_program.streams, is_program.config)
    assert sched.feeds == feeds(is_program, sched.done, sched.start[Engine.COMPUTE])
    result = sim.run(is_program, compute_outputs=False)
    busy = sum(
        instr.passes
        * instr.k_tiles
        * (instr.pixels if instr.mode == ComputeMode.ARRAY else max(instr.pixels, VECTOR_MIN_PASS))
        for instr in is_program.streams[Engine.COMPUTE]
    )
    assert busy + sum(result.stalls.values()) == result.total_cycles
    assert result.stalls["weights"] > 0


def test_the_docstring_table_2x2_three_pixels():
    """``accel.timing``'s IS table: taken in t, tile A fed from t + 4, tile B from t + 6
    (its rows load in t + 5, t + 6), the last dummy exit in t + 10, done in t + 12."""
    machine = IS_TINY.replace(array={"rows": 2, "cols": 2})
    instr = isa.Compute(mode=ComputeMode.ARRAY, out_h=1, out_w=3, ct_count=1, is_=1)
    t = timing.compute_timing(instr, 0, timing.ComputeState(unit=timing.IS_UNIT), machine)
    take = t.take
    assert (t.first_feed, t.last_feed, t.done) == (take + 4, take + 6, take + 12)
    assert (t.state.last_weight_load, t.state.front_free) == (take + 5, take + 7)
