"""The output-stationary dataflow (``array.dataflow = "os"``, ``accel.timing``,
OUTPUT-STATIONARY) on the cycle model: every dense ARRAY COMPUTE of an "os" machine carries
``os = 1``, the outputs are bit-exact to the golden model, the fast mode's closed form gives
the trace mode's cycle-stepped start and done cycles, and the program check rejects an ``os``
instruction the machine cannot run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import sim
from accel import config, executor, graph, isa, synthetic, timing
from accel.compiler import CompileError, compile
from accel.config import AccelConfig
from accel.isa import ComputeMode, Engine
from tests.layers import conv_qnet, conv_reference, quantized, random_input, zoo_qnet
from tests.test_sim_conv import small_configs
from tests.test_sim_conv_transpose import transposed


def os_config(base: AccelConfig) -> AccelConfig:
    return base.replace(array={"dataflow": "os"})


#: The "os" tiny preset, and a non-square 4x6 array with tiny's buffers.
OS_TINY = os_config(config.preset("tiny"))
OS_4X6 = OS_TINY.replace(name="os4x6", array={"rows": 4, "cols": 6})


@st.composite
def dense_layers(draw):
    """A convolution of any geometry: plain, grouped or depthwise, strided, dilated, padded."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
    groups = draw(st.sampled_from([1, 1, 2, 3, "depthwise"]))
    c = draw(st.integers(1, 6)) * (1 if groups == "depthwise" else groups)
    groups = c if groups == "depthwise" else groups
    k = c if groups == c and groups > 1 else groups * draw(st.integers(1, 14 // groups + 1))
    extent = [(kernel[i] - 1) * dilation[i] + 1 for i in range(2)]
    h = draw(st.integers(max(1, extent[0] - padding[0] - padding[1]), 12))
    w = draw(st.integers(max(1, extent[1] - padding[2] - padding[3]), 12))
    return dict(
        c=c,
        k=k,
        hw=(h, w),
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        activation=draw(st.sampled_from([None, "relu", "relu6"])),
    )


def check_flags(program, flag: str) -> None:
    """``flag`` (``os`` or ``is_``) is 1 on exactly the dense ARRAY instructions of a program
    of that dataflow, and the other dataflow's bit on none."""
    other = "is_" if flag == "os" else "os"
    computes = program.streams[Engine.COMPUTE]
    for instr in computes:
        dense = instr.mode == ComputeMode.ARRAY and not instr.depthwise
        assert getattr(instr, flag) == int(dense) and not getattr(instr, other), instr
    assert any(getattr(instr, flag) for instr in computes) or all(
        instr.depthwise or instr.mode != ComputeMode.ARRAY for instr in computes
    )


def run_conv(layer: dict, machine: AccelConfig, seed: int, trace: bool):
    """A random conv layer on ``machine`` (an "os" or "is" config): its bit set, golden ==
    model, and with ``trace`` fast == trace."""
    qnet = conv_qnet(np.random.default_rng(seed), **layer)
    try:
        program = compile(qnet, machine)
    except CompileError:
        assume(False)  # a random config too small for the layer: not this test's subject
    check_flags(program, {"os": "os", "is": "is_"}[machine.array.dataflow])
    x = random_input(np.random.default_rng(seed + 1), qnet)
    image = program.make_image({"input": x})
    fast = sim.run(program, image)
    np.testing.assert_array_equal(fast.outputs["conv"], conv_reference(qnet, x), strict=True)
    if trace:
        stepped = sim.run(program, image, mode="trace", compute_outputs=False)
        assert stepped.instruction_times() == fast.instruction_times()
        cycles_only = dataclasses.replace(fast, outputs={}, dram=None)
        assert dataclasses.replace(stepped, backend=fast.backend) == cycles_only
    return program, fast


def run_network(qnet, machine: AccelConfig):
    """``qnet`` compiled for ``machine`` (an "os" or "is" config) with its dataflow bit set
    (:func:`check_flags`) and run on random inputs, the outputs equal to the golden model's.
    Returns the program, its DRAM image and the fast mode's result."""
    program = compile(qnet, machine)
    check_flags(program, {"os": "os", "is": "is_"}[machine.array.dataflow])
    inputs = synthetic.random_int8_inputs(qnet)
    image = program.make_image(inputs)
    result = sim.run(program, image)
    for name, expected in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(result.outputs[name], expected, strict=True)
    return program, image, result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layer=dense_layers(),
    seed=st.integers(0, 2**16),
    machine=st.sampled_from([OS_TINY, OS_4X6]),
)
def test_random_conv_bit_exact_and_fast_equals_trace_on_os_machines(layer, seed, machine):
    run_conv(layer, machine, seed, trace=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=dense_layers(), config=small_configs(), seed=st.integers(0, 2**16))
def test_random_conv_fast_equals_trace_on_random_os_configs(layer, config, seed):
    run_conv(layer, os_config(config), seed, trace=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=transposed())
def test_random_transposed_convolutions_bit_exact_on_os_tiny(network):
    qnet = quantized(network)
    run_network(qnet, OS_TINY)


def test_fully_connected_layers_run_output_stationary():
    net = graph.Network("fc")
    x = net.add("input", graph.Input((20, 1, 1)))
    h = net.add("fc1", graph.Linear(20, 13, activation="relu"), [x])
    net.add("fc2", graph.Linear(13, 7), [h])
    qnet = quantized(net)
    program, _, fast = run_network(qnet, OS_4X6)
    assert any(instr.os for instr in program.streams[Engine.COMPUTE])
    trace = sim.run(program, mode="trace", compute_outputs=False)
    assert trace.instruction_times() == fast.instruction_times()


@pytest.mark.parametrize(
    ("name", "size"), [("tinynet", None), ("lenet5", 32), ("resnet18", 32), ("mobilenet_v2", 32)]
)
def test_zoo_networks_bit_exact_on_os_tiny(name, size):
    qnet = zoo_qnet(name, size)
    *_, result = run_network(qnet, OS_TINY)
    assert sum(layer.cycles for layer in result.layers) == result.total_cycles
    assert 0 < result.utilization <= 1


def test_whole_network_fast_equals_trace_on_os_tiny():
    """A whole network mixes the units (OS array, vector pools and adds): the unit-switch
    rule and the drains of consecutive groups, stepped, give the closed form's times."""
    program = compile(zoo_qnet("tinynet", None), OS_TINY)
    fast = sim.run(program, compute_outputs=False)
    trace = sim.run(program, compute_outputs=False, mode="trace")
    assert trace.instruction_times() == fast.instruction_times()
    assert dataclasses.replace(trace, backend=fast.backend) == fast


def test_the_os_schedule_of_one_instruction_by_hand():
    """The contract's formulas on the docstring's example: 2x2 array, one pass, 3 pixels
    (G = 2 groups of S = 2 steps), fed from F = take + 1."""
    machine = os_config(config.preset("tiny")).replace(array={"rows": 2, "cols": 2})
    instr = isa.Compute(mode=ComputeMode.ARRAY, out_h=1, out_w=3, ct_count=1, os=1)
    t = timing.compute_timing(instr, 10, timing.ComputeState(unit=timing.OS_UNIT), machine)
    F = 10 + timing.COMPUTE_DECODE + 1
    assert (t.take, t.first_feed, t.last_feed) == (F - 1, F, F + 3)
    # Last exit: group 1, row 0, column 1 in E_1 + 2R + c + 1 = (F + 3) + 4 + 1 + 1.
    assert t.done == (F + 3) + 6 + timing.ACC_LATENCY + 1
    assert (t.state.stream_free, t.state.front_free, t.state.last_feed) == (F + 4, F + 3, F + 3)
    # A weight-stationary instruction next switches units: it feeds no earlier than done.
    ws = dataclasses.replace(instr, os=0)
    after = timing.compute_timing(ws, 0, t.state, machine)
    assert after.first_feed >= t.done


def test_the_tiler_charges_the_os_pass_cost():
    """ceil(T / rows) * rows per pass output-stationary, max(T, rows) weight-stationary."""
    from accel.compiler.tiling import Hardware, Window, estimate_cycles

    hw = Hardware.of(config.preset("tiny"))
    rows = hw.rows
    osw = dataclasses.replace(hw, os=True)

    def compute(h, tile, **kw):
        zero = dataclasses.replace(h, dram_latency=0)
        return estimate_cycles(zero, (1, tile), Window(), 1, 1, 10, (1, tile), **kw)

    ws_small, os_small = compute(hw, rows - 1), compute(osw, rows - 1)
    assert os_small == ws_small  # T < rows: both one group of rows
    assert compute(osw, rows + 1) - compute(hw, rows + 1) == 10 * (rows - 1)
    assert compute(osw, rows + 1, depthwise=True) == compute(hw, rows + 1)


@pytest.fixture(scope="module")
def os_program():
    return compile(zoo_qnet("tinynet", None), OS_TINY)


def _edited(program, index, **changes):
    streams = dict(program.streams)
    computes = list(streams[Engine.COMPUTE])
    computes[index] = dataclasses.replace(computes[index], **changes)
    streams[Engine.COMPUTE] = computes
    return dataclasses.replace(program, streams=streams)


def _first(program, predicate):
    return next(i for i, c in enumerate(program.streams[Engine.COMPUTE]) if predicate(c))


def test_program_check_rejects_os_on_a_ws_machine():
    program = compile(zoo_qnet("tinyconv"), config.preset("tiny"))
    bad = _edited(program, 0, os=1)
    with pytest.raises(ValueError, match=r"^COMPUTE\[0\] \(layer \d+\): os = 1 .* 'ws'$"):
        bad.validate()
    with pytest.raises(ValueError, match=r"COMPUTE\[0\].*os = 1"):
        sim.run(bad, compute_outputs=False)


def test_program_check_rejects_os_in_a_vector_mode(os_program):
    index = _first(os_program, lambda c: c.mode != ComputeMode.ARRAY)
    mode = ComputeMode(os_program.streams[Engine.COMPUTE][index].mode).name
    with pytest.raises(
        ValueError,
        match=rf"^COMPUTE\[{index}\] \(layer \d+\): os = 1 needs ARRAY mode, not "
        rf"mode = {mode}$",
    ):
        _edited(os_program, index, os=1).validate()


def test_program_check_rejects_os_with_depthwise(os_program):
    index = _first(os_program, lambda c: c.os)
    bad = _edited(os_program, index, depthwise=1, taps_h=1, taps_w=1, kernel_h=1, kernel_w=1)
    with pytest.raises(
        ValueError, match=rf"^COMPUTE\[{index}\] \(layer \d+\): os = 1 with depthwise = 1"
    ):
        bad.validate()


def test_os_programs_run_output_stationary_and_ws_programs_do_not(os_program):
    ws_program = compile(zoo_qnet("tinynet", None), config.preset("tiny"))
    assert not any(c.os for c in ws_program.streams[Engine.COMPUTE])
    check_flags(os_program, "os")
    os_program.validate()


def test_os_feed_slots_and_stalls_add_up(os_program):
    """The feed slots the fast mode records are the ones derived from start and done (as RTL
    results derive them), and the feed-slot busy cycles (``passes * pixels`` per
    instruction) plus the stalls (an OS group's idle rows are ``fill_drain``) are the total."""
    from accel.backend import feeds
    from accel.timing import VECTOR_MIN_PASS
    from sim.controller import schedule

    sched = schedule(os_program.streams, os_program.config)
    assert sched.feeds == feeds(os_program, sched.done, sched.start[Engine.COMPUTE])
    result = sim.run(os_program, compute_outputs=False)
    busy = sum(
        instr.passes
        * (instr.pixels if instr.mode == ComputeMode.ARRAY else max(instr.pixels, VECTOR_MIN_PASS))
        for instr in os_program.streams[Engine.COMPUTE]
    )
    assert busy + sum(result.stalls.values()) == result.total_cycles
    assert result.stalls["fill_drain"] > 0


def test_os_depthwise_and_vector_units_switch_alike_in_fast_and_trace():
    """An "os" machine runs dense layers output-stationary, the depthwise one in the
    weight-stationary depthwise mode and the pool on the vector unit: every switch between
    the three units waits for the previous instruction's done, in both modes."""
    net = graph.Network("mix")
    x = net.add("input", graph.Input((6, 9, 9)))
    a = net.add("c1", graph.Conv2d(6, 8, 3, padding=1, activation="relu"), [x])
    b = net.add("dw", graph.Conv2d(8, 8, 3, padding=1, groups=8, activation="relu"), [a])
    c = net.add("c2", graph.Conv2d(8, 5, 1), [b])
    d = net.add("pool", graph.MaxPool2d(2, 2), [c])
    net.add("c3", graph.Conv2d(5, 4, 3, padding=1), [d])
    qnet = quantized(net)
    program, image, fast = run_network(qnet, OS_TINY)
    computes = program.streams[Engine.COMPUTE]
    units = {timing.compute_unit(instr) for instr in computes}
    assert units == {timing.OS_UNIT, timing.WS_UNIT, timing.VECTOR_UNIT}
    assert any(instr.depthwise for instr in computes)
    trace = sim.run(program, image, mode="trace", compute_outputs=False)
    assert trace.instruction_times() == fast.instruction_times()
