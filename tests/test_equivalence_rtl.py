"""The RTL top (:class:`hdl.top.Accelerator`) against the cycle model and the golden model.

Programs run on the RTL backends — the Amaranth simulator (:func:`hdl.flow.amaranth_sim.run`) and
Verilator (:func:`hdl.flow.verilator.run`, the generated Verilog) — must give the golden model's
outputs bit for bit, and the model's cycles: the total, every instruction's start and done,
and the controller's performance counters. One test body runs on both backends.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config as cfg
from accel import executor, graph, isa, synthetic
from accel.compiler import compile
from accel.isa import Engine
from hdl.flow import amaranth_sim, verilator
from tests.layers import conv_qnet, conv_reference, quantized, random_input, zoo_qnet

TINY = cfg.preset("tiny")
#: Slow, odd-width DRAM: beats split words, latency delays every first beat.
NARROW = TINY.replace(dram={"bandwidth": 3, "latency": 7})
#: Two weight banks and a bus of two weight words: a LOAD writes two weight words per beat.
BANKED = TINY.replace(name="tiny-banked", dram={"bandwidth": 8}, buffers={"weight_banks": 2})

CONVS = {
    "3x3 pad 1": dict(c=8, k=4, hw=(5, 5), kernel=(3, 3), padding=(1, 1, 1, 1)),
    "stride 2 relu": dict(
        c=8, k=4, hw=(7, 7), kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), activation="relu"
    ),
    "several channel and k tiles": dict(c=12, k=6, hw=(4, 4), kernel=(3, 3)),
    "asymmetric pad, dilation 2": dict(
        c=4, k=4, hw=(6, 6), kernel=(2, 2), padding=(0, 1, 2, 1), dilation=(2, 2)
    ),
    "depthwise relu6": dict(
        c=8, k=8, hw=(5, 5), kernel=(3, 3), padding=(1, 1, 1, 1), groups=8, activation="relu6"
    ),
    "host im2col": dict(c=3, k=4, hw=(5, 5), kernel=(3, 3), padding=(1, 1, 1, 1)),
    # graph.channel_affine: a standalone BatchNormalization, several channel tiles
    "per-channel affine relu": dict(
        c=12, k=12, hw=(4, 6), kernel=(1, 1), groups=12, activation="relu"
    ),
}


def first_divergence(model, rtl) -> str | None:
    """The first instruction (in model start order) whose start or done differs, named."""
    for engine in Engine:
        assert len(rtl.start[engine]) == len(model.start[engine]), engine
    rows = sorted((model.start[e][i], e, i) for e in Engine for i in range(len(rtl.start[e])))
    for _, engine, i in rows:
        want = (model.start[engine][i], model.done[engine][i])
        got = (rtl.start[engine][i], rtl.done[engine][i])
        if want != got:
            return f"{engine.name}[{i}]: model (start, done) = {want}, RTL = {got}"
    return None


BACKENDS = {"amaranth": amaranth_sim.run, "verilator": verilator.run}


def check(program, image, expected: dict[str, np.ndarray], backend: str) -> None:
    model = sim.run(program, image)
    rtl = BACKENDS[backend](program, image, max_cycles=4 * model.total_cycles + 100)
    assert rtl.backend == backend
    assert first_divergence(model, rtl) is None, first_divergence(model, rtl)
    assert rtl.total_cycles == model.total_cycles
    assert rtl.counters == model.counters
    for name, value in expected.items():
        np.testing.assert_array_equal(model.outputs[name], value, strict=True)
        np.testing.assert_array_equal(rtl.outputs[name], value, strict=True)


#: (config, backend); Verilator on NARROW is one more build, so it is in the slow tier.
SETUPS = [
    pytest.param(TINY, "amaranth", id="tiny-amaranth"),
    pytest.param(NARROW, "amaranth", id="bw3-lat7-amaranth"),
    pytest.param(TINY, "verilator", id="tiny-verilator"),
    pytest.param(NARROW, "verilator", id="bw3-lat7-verilator", marks=pytest.mark.slow),
    pytest.param(BANKED, "amaranth", id="banked-amaranth"),
    pytest.param(BANKED, "verilator", id="banked-verilator"),
]


@pytest.mark.parametrize(("config", "backend"), SETUPS)
@pytest.mark.parametrize("name", list(CONVS))
def test_conv_layer_bit_and_cycle_exact(name, config, backend):
    rng = np.random.default_rng(len(name))
    qnet = conv_qnet(rng, **CONVS[name])
    program = compile(qnet, config)
    x = random_input(rng, qnet)
    check(program, program.make_image({"input": x}), {"conv": conv_reference(qnet, x)}, backend)


def zoo_check(name: str, size: int | None, config, backend: str) -> None:
    qnet = zoo_qnet(name, size)
    program = compile(qnet, config)
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_tinyconv_network_bit_and_cycle_exact(backend):
    zoo_check("tinyconv", None, TINY, backend)


@pytest.mark.parametrize(
    ("config", "backend"),
    [
        pytest.param(TINY, "verilator", id="tiny-verilator"),
        pytest.param(NARROW, "verilator", id="bw3-lat7-verilator", marks=pytest.mark.slow),
        pytest.param(TINY, "amaranth", id="tiny-amaranth", marks=pytest.mark.slow),
        pytest.param(NARROW, "amaranth", id="bw3-lat7-amaranth", marks=pytest.mark.slow),
        pytest.param(BANKED, "verilator", id="banked-verilator"),
    ],
)
def test_tinynet_pools_residual_fc_bit_and_cycle_exact(config, backend):
    zoo_check("tinynet", None, config, backend)


def global_pool_qnet(shape: tuple[int, int, int]):
    """input -> global average pool -> fc."""
    net = graph.Network("gap")
    net.add("input", graph.Input(shape))
    net.add("gap", graph.GlobalAvgPool(), ["input"])
    net.add("fc", graph.Linear(shape[0], 3), ["gap"])
    return quantized(net)


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("shape", [(6, 40, 40), (4, 3, 300)], ids=["rows", "columns"])
def test_a_global_pool_over_half_the_input_buffer_sums_in_blocks(shape, backend):
    """tiny's input buffer holds 1024 words, 512 per half: a 40x40 pool sums blocks of whole
    rows, a 3x300 one blocks of 150 columns (a kernel is at most 255 wide), accumulating."""
    qnet = global_pool_qnet(shape)
    program = compile(qnet, TINY)
    assert "summed in" in program.layers[0].mapping["input"]
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_dilated_max_pools_bit_and_cycle_exact(backend):
    """Max pools whose window taps are ``dilation`` apart (the vector unit's window walks
    them as a dilated convolution's): padded, strided and ceil-mode, 2-D and 1-D, over 20
    channels (two channel tiles on ``tiny``)."""
    net = graph.Network("dilated_pools")
    x = net.add("input", graph.Input((20, 9, 11)))
    a = net.add("a", graph.MaxPool2d(3, 1, padding=1, dilation=2), [x])
    b = net.add("b", graph.MaxPool2d((2, 3), (2, 1), padding=(1, 1), dilation=(3, 2)), [a])
    net.add("c", graph.MaxPool2d((1, 3), (1, 2), ceil_mode=True, dilation=(1, 2)), [b])
    qnet = quantized(net)
    program = compile(qnet, TINY)
    inputs = synthetic.random_int8_inputs(qnet)
    check(program, program.make_image(inputs), executor.run_network(qnet, inputs), backend)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_illegal_instruction_is_flagged(backend):
    rng = np.random.default_rng(0)
    qnet = conv_qnet(rng, **CONVS["3x3 pad 1"])
    program = compile(qnet, TINY)
    image = program.make_image({"input": random_input(rng, qnet)})
    # A COMPUTE instruction waiting on a semaphore the LOAD engine consumes.
    compute = program.streams[Engine.COMPUTE]
    compute[0] = isa.with_fields(compute[0], wait=isa.mask(isa.Sem.C2L))
    with pytest.raises(RuntimeError, match="illegal instruction"):
        BACKENDS[backend](program, image, max_cycles=1000)


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
