"""The program cache (accel.cache): where it lives, what its keys cover, that it is a pure
optimisation (every output byte for byte the same with and without it), and that a bad entry
is compiled again."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import sim
from accel import cache, compiler, config, graph, report
from accel.cli import main
from accel.program import Program
from accel.quantized import TensorQuant
from tests.layers import zoo_qnet

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Every test gets its own cache directory."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ACCEL_CACHE", str(root))
    return root


# ---------------------------------------------------------------------------------------
# Where


def test_the_cache_root_is_accel_cache_or_the_home_cache(monkeypatch, tmp_path):
    from hdl.flow import verilator

    assert cache.cache_root() == tmp_path / "cache"
    assert verilator.cache_dir() == tmp_path / "cache" / "verilator"
    assert cache.ProgramCache().directory == tmp_path / "cache" / "programs"
    for unset in (None, ""):
        if unset is None:
            monkeypatch.delenv("ACCEL_CACHE")
        else:
            monkeypatch.setenv("ACCEL_CACHE", unset)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert cache.cache_root() == tmp_path / "home" / ".cache" / "accel"
        assert verilator.cache_dir() == tmp_path / "home" / ".cache" / "accel" / "verilator"


def test_hdl_has_no_cache_root_of_its_own():
    text = (ROOT / "hdl" / "flow" / "verilator.py").read_text()
    assert re.search(r"from accel\.cache import .*\bcache_root\b", text)
    assert 'environ.get("ACCEL_CACHE")' not in text and "Path.home()" not in text


# ---------------------------------------------------------------------------------------
# The compiler version


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name imported from a module, not a module
        return False


def _accel_imports(module: str) -> set[str]:
    """The ``accel`` modules ``module`` imports (any import statement, at any depth)."""
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("accel") and _is_module(name):
                found.add(name)
    return found


def test_the_compiler_version_covers_every_module_the_compiler_imports():
    seen, todo = set(), ["accel.compiler", "accel.program"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(_accel_imports(module) - seen)
    seen.discard("accel")
    assert seen <= set(cache.COMPILER_MODULES), sorted(seen - set(cache.COMPILER_MODULES))
    for module in ("accel.isa", "accel.program", "accel.timing", "accel.config"):
        assert module in cache.COMPILER_MODULES


def test_the_compiler_version_is_a_hash_of_the_source(tmp_path, monkeypatch):
    version = cache.compiler_version()
    assert len(version) == 16 and int(version, 16) >= 0
    assert version == cache.source_digest(cache.COMPILER_MODULES)
    package = tmp_path / "fakecompiler"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tiling.py").write_text("LIMIT = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = cache.source_digest(["fakecompiler", "fakecompiler.tiling"])
    (package / "tiling.py").write_text("LIMIT = 2\n")
    assert cache.source_digest(["fakecompiler", "fakecompiler.tiling"]) != before


# ---------------------------------------------------------------------------------------
# The network digest


def _replace_layer(qnet, name, **changes):
    qnet.layers[name] = dataclasses.replace(qnet.layers[name], **changes)


def _bump(array, index=0, by=1):
    array = array.copy()
    array.flat[index] += by
    return array


MUTATIONS = {
    "a weight": lambda q: _replace_layer(q, "conv1", weight=_bump(q.layers["conv1"].weight)),
    "a bias": lambda q: _replace_layer(q, "conv1", bias=_bump(q.layers["conv1"].bias)),
    "a multiplier": lambda q: _replace_layer(
        q, "conv2", multiplier=_bump(q.layers["conv2"].multiplier, 3)
    ),
    "a shift": lambda q: _replace_layer(q, "fc", shift=_bump(q.layers["fc"].shift)),
    "a clamp": lambda q: _replace_layer(q, "conv1", act_min=q.layers["conv1"].act_min + 1),
    "a weight scale": lambda q: _replace_layer(
        q, "conv1", weight_scale=q.layers["conv1"].weight_scale * (1 + 2**-40)
    ),
    "the add's parameters": lambda q: _replace_layer(q, "add", left_shift=19),
    "a tensor scale": lambda q: q.tensors.update(
        conv1=TensorQuant(q.tensors["conv1"].scale * (1 + 2**-50), q.tensors["conv1"].zero_point)
    ),
    "a zero point": lambda q: q.tensors.update(
        pool=TensorQuant(q.tensors["pool"].scale, q.tensors["pool"].zero_point + 1)
    ),
}


def test_the_network_digest_is_stable_and_covers_every_parameter():
    digest = zoo_qnet("tinynet").digest
    assert len(digest) == 32
    assert zoo_qnet("tinynet").digest == digest  # another quantisation, the same network
    script = "from tests.layers import zoo_qnet; print(zoo_qnet('tinynet').digest)"
    fresh = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert fresh.stdout.strip() == digest  # not salted per process
    seen = {digest}
    for what, mutate in MUTATIONS.items():
        qnet = zoo_qnet("tinynet")
        mutate(qnet)
        assert qnet.digest not in seen, what
        seen.add(qnet.digest)


def test_the_network_digest_covers_the_graph_and_the_float_weights():
    from accel import graph, models, ptq

    base = zoo_qnet("tinynet")
    assert zoo_qnet("tinynet", size=32).digest != base.digest  # shapes
    assert ptq.quantize(graph.fuse_activations(models.get("tinynet")), seed=1).digest != (
        base.digest
    )
    for change in ("same", "float weight", "node name", "network name"):
        qnet = zoo_qnet("tinynet")
        old = qnet.network
        net = graph.Network("tinynet2" if change == "network name" else "tinynet")
        rename = {"pw": "pointwise"} if change == "node name" else {}
        for name in old.order():
            inputs = [rename.get(n, n) for n in old.inputs(name)]
            net.add(rename.get(name, name), old.op(name), inputs)
            weights = old.weights(name)
            if weights:
                weight = weights["weight"]
                if name == "fc" and change == "float weight":
                    weight = weight + 1e-3  # the float weights only
                net.set_weights(rename.get(name, name), weight, weights.get("bias"))
        qnet.network = net
        assert (qnet.digest == base.digest) == (change == "same"), change


# ---------------------------------------------------------------------------------------
# compile_cached


def test_a_miss_compiles_and_stores_then_a_hit_skips_the_compiler(monkeypatch):
    qnet, cfg = zoo_qnet("tinynet"), config.preset("tiny")
    store = cache.ProgramCache()
    first = cache.compile_cached(qnet, cfg, cache=store)
    assert not first.hit and first.path.is_file() and first.note is None
    assert first.path.parent.name == cache.compiler_version()
    assert first.path.name == f"{qnet.digest}-{cfg.digest}.bin"
    assert "stored in the program cache" in first.describe()
    calls = []
    monkeypatch.setattr(compiler.lower, "lower_network", lambda *a: calls.append(a))
    second = cache.compile_cached(qnet, cfg, cache=store)
    assert second.hit and calls == [] and second.path == first.path
    assert second.describe().startswith("program cache hit, compilation skipped: ")
    assert second.program.to_bytes() == first.program.to_bytes()
    assert store.entries() == [first.path]


def test_keep_tensors_and_another_config_are_other_entries():
    qnet, cfg = zoo_qnet("tinyconv"), config.preset("tiny")
    store = cache.ProgramCache()
    paths = {
        cache.compile_cached(qnet, cfg, cache=store).path,
        cache.compile_cached(qnet, cfg, keep_tensors=True, cache=store).path,
        cache.compile_cached(qnet, cfg.replace(clock_mhz=50.0), cache=store).path,
        cache.compile_cached(qnet, cfg.replace(name="other"), cache=store).path,
    }
    assert len(paths) == 4 and len(store.entries()) == 4
    named = cache.compile_cached(qnet, cfg, keep=["conv"], cache=store)
    assert not named.hit and named.path not in paths and named.path.name.startswith(qnet.digest)
    assert named.program.to_bytes() == compiler.compile(qnet, cfg, keep=["conv"]).to_bytes()
    assert cache.compile_cached(qnet, cfg, keep=["conv"], cache=store).hit
    kept = cache.compile_cached(qnet, cfg, keep_tensors=True, cache=store)
    assert kept.hit and kept.path.name.endswith("-keep.bin")
    assert kept.program.to_bytes() == compiler.compile(qnet, cfg, keep_tensors=True).to_bytes()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # a flipped bit: the CRC
        lambda data: b"",
        lambda data: b"not a program at all",
    ],
    ids=["truncated", "corrupt", "empty", "garbage"],
)
def test_a_bad_entry_is_ignored_and_compiled_again(damage):
    qnet, cfg = zoo_qnet("tinyconv"), config.preset("tiny")
    store = cache.ProgramCache()
    good = cache.compile_cached(qnet, cfg, cache=store)
    data = good.path.read_bytes()
    good.path.write_bytes(damage(data))
    again = cache.compile_cached(qnet, cfg, cache=store)
    assert not again.hit and again.program.to_bytes() == data
    assert good.path.read_bytes() == data  # repaired
    assert cache.compile_cached(qnet, cfg, cache=store).hit


def test_an_entry_of_another_config_under_this_name_is_not_used():
    qnet, cfg = zoo_qnet("tinyconv"), config.preset("tiny")
    store = cache.ProgramCache()
    path = store.path(qnet.digest, cfg)
    other = compiler.compile(qnet, cfg.replace(name="other"))
    assert store.store(path, other) is None
    compiled = cache.compile_cached(qnet, cfg, cache=store)
    assert not compiled.hit and compiled.program.config == cfg


def test_an_unwritable_cache_is_skipped_with_a_note(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = cache.ProgramCache(blocker / "programs")
    qnet, cfg = zoo_qnet("tinyconv"), config.preset("tiny")
    compiled = cache.compile_cached(qnet, cfg, cache=store)
    assert not compiled.hit and compiled.note.startswith("not cached: cannot write")
    assert compiled.describe().startswith("compiled; not cached: cannot write")
    assert compiled.program.to_bytes() == compiler.compile(qnet, cfg).to_bytes()


def test_a_replaced_compiler_bypasses_the_cache(monkeypatch):
    qnet, cfg = zoo_qnet("tinyconv"), config.preset("tiny")
    store = cache.ProgramCache()
    cache.compile_cached(qnet, cfg, cache=store)
    real = compiler.compile
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(compiler, "compile", spy)
    compiled = cache.compile_cached(qnet, cfg, cache=store)
    assert not compiled.hit and len(calls) == 1 and "compile() is replaced" in compiled.note


def test_concurrent_writers_never_show_a_partial_entry():
    qnet, cfg = zoo_qnet("tinynet"), config.preset("tiny")
    store = cache.ProgramCache()
    program = compiler.compile(qnet, cfg)
    path = store.path(qnet.digest, cfg)
    expected = program.to_bytes()
    problems, stop = [], threading.Event()

    def write():
        for _ in range(20):
            problems.append(store.store(path, program))

    def read():
        while not stop.is_set():
            if path.exists():
                loaded = store.load(path)
                problems.append(None if loaded is not None else "unreadable")

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write) for _ in range(3)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert set(problems) == {None}
    assert path.read_bytes() == expected
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_clear_removes_every_entry():
    store = cache.ProgramCache()
    assert store.entries() == [] and store.size() == 0 and store.clear() == 0
    cache.compile_cached(zoo_qnet("tinyconv"), config.preset("tiny"), cache=store)
    assert len(store.entries()) == 1 and store.size() > 0
    assert store.clear() == 1
    assert not store.directory.exists()


# ---------------------------------------------------------------------------------------
# A pure optimisation


@pytest.mark.parametrize(
    ("name", "size", "preset"), [("resnet18", 64, "edge"), ("mobilenet_v2", 64, "edge")]
)
def test_a_program_read_back_gives_the_same_outputs(name, size, preset):
    program = compiler.compile(zoo_qnet(name, size), config.preset(preset))
    loaded = Program.from_bytes(program.to_bytes())
    assert loaded.listing() == program.listing()
    results = [sim.run(p, compute_outputs=False) for p in (program, loaded)]
    assert results[0].total_cycles == results[1].total_cycles
    for fmt in ("table", "json", "csv"):
        assert report.render(results[1], loaded, fmt) == report.render(results[0], program, fmt)


def _outputs(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_every_command_writes_the_same_bytes_with_and_without_the_cache(
    tmp_path, capsys, cache_home
):
    runs = {}
    for label, extra in (("cold", []), ("warm", []), ("off", ["--no-cache"])):
        out = tmp_path / label
        common = ["tinynet", "--preset", "tiny", *extra, "-v"]
        assert main(["simulate", *common, "-o", str(out / "simulate")]) == 0
        printed = capsys.readouterr()
        assert main(["report", *common, "-q", "-o", str(out / "report")]) == 0
        report_err = capsys.readouterr().err
        program = out / "tinynet.bin"
        listing = out / "tinynet.lst"
        assert main(["compile", *common, "-o", str(program), "--listing", str(listing)]) == 0
        compile_err = capsys.readouterr().err
        runs[label] = {
            "stdout": printed.out,
            "simulate": _outputs(out / "simulate"),
            "report": _outputs(out / "report"),
            "program": program.read_bytes(),
            "listing": listing.read_bytes(),
        }
        if label == "cold":
            assert "accel: compiled; stored in the program cache: " in printed.err
            assert "program cache hit" in report_err and "program cache hit" in compile_err
        elif label == "warm":
            for err in (printed.err, report_err, compile_err):
                assert f"program cache hit, compilation skipped: {cache_home}" in err
        else:
            assert printed.err.strip() == "accel: compiled"
    assert runs["cold"] == runs["warm"] == runs["off"]
    assert Program.from_bytes(runs["cold"]["program"]).network == "tinynet"


def test_without_verbose_the_cache_says_nothing(capsys):
    for _ in range(2):
        assert main(["simulate", "tinyconv", "--preset", "tiny", "--cycles-only"]) == 0
        assert capsys.readouterr().err == ""


def test_the_cache_command_shows_and_clears(capsys, cache_home):
    assert main(["simulate", "tinyconv", "--preset", "tiny", "--cycles-only", "-q"]) == 0
    capsys.readouterr()
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert f"cache directory: {cache_home}" in out
    assert f"programs: {cache_home / 'programs'}: 1 programs" in out
    assert f"verilator builds: {cache_home / 'verilator'}: 0 builds, 0.0 MiB" in out
    assert f"cocotb builds: {cache_home / 'cocotb'}: 0 builds, 0.0 MiB" in out
    assert main(["cache", "--clear"]) == 0
    assert capsys.readouterr().out.strip() == f"removed 1 programs from {cache_home / 'programs'}"
    assert cache.ProgramCache().entries() == []


def test_the_cache_command_sizes_and_clears_the_builds(capsys, cache_home):
    """Two stand-in Verilator builds of 1 MiB and 2 MiB, one cocotb build; the programs stay."""
    assert main(["simulate", "tinyconv", "--preset", "tiny", "--cycles-only", "-q"]) == 0
    for name, size in (("verilator/aaaa", 1), ("verilator/bbbb", 2), ("cocotb/top-cc", 1)):
        (cache_home / name).mkdir(parents=True)
        (cache_home / name / "Vtop").write_bytes(bytes(size << 20))
    capsys.readouterr()
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert f"verilator builds: {cache_home / 'verilator'}: 2 builds, 3.0 MiB" in out
    assert f"cocotb builds: {cache_home / 'cocotb'}: 1 builds, 1.0 MiB" in out
    assert main(["cache", "--clear-builds"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"removed 2 verilator builds (3.0 MiB) from {cache_home / 'verilator'}",
        f"removed 1 cocotb builds (1.0 MiB) from {cache_home / 'cocotb'}",
    ]
    assert not (cache_home / "verilator").exists() and not (cache_home / "cocotb").exists()
    assert len(cache.ProgramCache().entries()) == 1


def test_a_cached_program_keeps_the_inputs_it_was_compiled_for():
    qnet, cfg = zoo_qnet("tinynet"), config.preset("tiny")
    store = cache.ProgramCache()
    cache.compile_cached(qnet, cfg, cache=store)
    program = cache.compile_cached(qnet, cfg, cache=store).program
    image = program.make_image(
        {
            name: np.zeros((layout.channels, layout.height, layout.width), np.int8)
            for name, layout in program.inputs.items()
        }
    )
    assert image.size == program.dram_bytes


# ---------------------------------------------------------------------------------------
# Networks deployed in segments (host steps) do not go through the cache


def _standalone_activation() -> graph.Network:
    """An activation on the network input: nothing to fuse it into, so the host runs it."""
    net = graph.Network("standalone")
    net.add("input", graph.Input((3, 8, 8)))
    net.add("relu", graph.Activation("relu"), ["input"])
    net.add("conv", graph.Conv2d(3, 4, 3, padding=1), ["relu"])
    return net


def _host_op() -> graph.Network:
    from onnx import helper

    from accel.host import host_op

    shape = (4, 8, 8)
    sigmoid = host_op(
        helper.make_node("Sigmoid", ["x"], ["y"]),
        [("x", shape)],
        {},
        shape,
        shape,
        [helper.make_opsetid("", 13)],
    )
    net = graph.Network("hosted")
    net.add("input", graph.Input((3, 8, 8)))
    net.add("conv", graph.Conv2d(3, 4, 3, padding=1), ["input"])
    net.add("sig", sigmoid, ["conv"])
    net.add("conv2", graph.Conv2d(4, 4, 1), ["sig"])
    return net


def test_the_segments_of_a_network_with_host_ops_go_through_the_cache(
    capsys, monkeypatch, cache_home
):
    monkeypatch.setattr("accel.cli.load_network", lambda args: _host_op())
    assert main(["simulate", "hosted", "--preset", "tiny", "-v"]) == 0
    first, err = capsys.readouterr()
    assert "host: 1 op(s)" in first and err.count("program cache") == 2  # two segments
    assert len(cache.ProgramCache().entries()) == 2
    assert main(["simulate", "hosted", "--preset", "tiny", "-v"]) == 0
    again, err = capsys.readouterr()
    assert again == first and err.count("program cache hit, compilation skipped") == 2


def test_build_lock_makes_a_second_builder_wait(tmp_path):
    """Two builders of one entry: the second takes the lock only once the first let go."""
    entry = tmp_path / "entries" / "key"
    order = []
    holding = threading.Event()

    def second():
        holding.wait()
        with cache.build_lock(entry):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with cache.build_lock(entry):
        holding.set()
        thread.join(timeout=0.5)  # it cannot get in while this one holds the lock
        order.append("first")
    thread.join()
    assert order == ["first", "second"]
