"""AccelConfig: presets, invariants, TOML round trip, pinned error messages."""

import dataclasses
import math
import re

import pytest

from accel import config
from accel.config import AccelConfig, ArrayConfig, BufferConfig, DramConfig


@pytest.mark.parametrize(
    ("name", "rows", "cols"), [("tiny", 4, 4), ("edge", 16, 16), ("server", 32, 32)]
)
def test_presets(name, rows, cols):
    cfg = config.preset(name)
    assert (cfg.name, cfg.array.rows, cfg.array.cols) == (name, rows, cols)
    assert cfg.peak_macs_per_cycle == rows * cols
    assert cfg.acc_entries == cfg.buffers.acc_bytes // 4


@pytest.mark.parametrize("name", ["tiny", "edge", "server"])
def test_buffer_depths_are_bytes_over_word_bytes(name):
    cfg = config.preset(name)
    rows, cols, b = cfg.array.rows, cfg.array.cols, cfg.buffers
    assert (cfg.input_words, cfg.input_word_bytes) == (b.input_bytes // rows, rows)
    assert (cfg.weight_words, cfg.weight_word_bytes) == (b.weight_bytes // cols, cols)
    assert (cfg.param_words, cfg.param_word_bytes) == (b.param_bytes // (12 * cols), 12 * cols)
    assert (cfg.acc_rows, cfg.acc_row_bytes) == (b.acc_bytes // (4 * cols), 4 * cols)
    assert (cfg.output_words, cfg.output_word_bytes) == (b.output_bytes // cols, cols)
    assert cfg.vector_lanes == min(rows, cols)


def test_preset_names_and_unknown():
    assert config.preset_names() == ["tiny", "edge", "server"]
    with pytest.raises(ValueError, match=r"unknown preset 'huge'"):
        config.preset("huge")


def test_frozen():
    cfg = config.preset("edge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.array.rows = 8  # type: ignore[misc]


@pytest.mark.parametrize("name", ["tiny", "edge", "server"])
def test_toml_round_trip(tmp_path, name):
    cfg = config.preset(name)
    path = tmp_path / "cfg.toml"
    cfg.save(path)
    assert config.load(path) == cfg
    assert config.load(path).digest == cfg.digest


def test_partial_toml_takes_edge_defaults(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text('name = "mine"\n[array]\nrows = 8\n')
    cfg = config.load(path)
    assert (cfg.name, cfg.array.rows, cfg.array.cols) == ("mine", 8, 16)
    assert cfg.buffers == config.preset("edge").buffers


def test_replace_nested():
    cfg = config.preset("edge").replace(name="e8", array={"rows": 8}, dram={"bandwidth": 64})
    assert (cfg.array.rows, cfg.array.cols, cfg.dram.bandwidth) == (8, 16, 64)
    assert cfg.digest != config.preset("edge").digest


def test_derived_values():
    cfg = config.preset("edge")
    assert cfg.peak_gops == pytest.approx(2 * 256 * 500 / 1000)
    assert cfg.dram_gbytes_per_s == pytest.approx(16 * 0.5)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: ArrayConfig(rows=0), ValueError, r"array.rows must be >= 2, not 0"),
        (lambda: ArrayConfig(cols=2.5), TypeError, r"array.cols must be an int, not 2.5"),
        (lambda: ArrayConfig(dataflow="xs"), ValueError, r"array.dataflow .* not 'xs'"),
        (lambda: ArrayConfig(rows=512), ValueError, r"512x16 exceeds"),
        (
            lambda: BufferConfig(input_bytes=-4),
            ValueError,
            r"buffers.input_bytes must be >= 1, not -4",
        ),
        (lambda: DramConfig(bandwidth=0), ValueError, r"dram.bandwidth must be >= 1, not 0"),
        (lambda: DramConfig(latency=-1), ValueError, r"dram.latency must be >= 0, not -1"),
        (lambda: AccelConfig(clock_mhz=0), ValueError, r"must be finite and > 0, not 0"),
        (lambda: AccelConfig(clock_mhz=math.inf), ValueError, r"must be finite and > 0, not inf"),
        (lambda: AccelConfig(clock_mhz=math.nan), ValueError, r"must be finite and > 0, not nan"),
        (
            lambda: DramConfig(bandwidth=10**9),
            ValueError,
            r"^dram.bandwidth = 1000000000 exceeds the maximum 1024$",
        ),
        (
            lambda: DramConfig(latency=10**6),
            ValueError,
            r"^dram.latency = 1000000 exceeds the maximum 4096$",
        ),
        (
            lambda: AccelConfig(buffers=BufferConfig(input_bytes=2**30)),
            ValueError,
            r"^buffers.input_bytes = 1073741824 exceeds the maximum 16777216 for a 16x16 array "
            r"\(1048576 words of 16 bytes, what the 20-bit Load.sram_addr field addresses\)$",
        ),
        (
            lambda: AccelConfig(buffers=BufferConfig(param_bytes=10**8)),
            ValueError,
            r"param_bytes = 100000000 exceeds the maximum 12582912 .* 16-bit Post.param_base",
        ),
        (lambda: AccelConfig(name=""), ValueError, r"non-empty string"),
        (
            lambda: BufferConfig(weight_banks=3),
            ValueError,
            r"^buffers.weight_banks = 3 exceeds the maximum 2$",
        ),
        (
            lambda: AccelConfig(array=ArrayConfig(rows=3), buffers=BufferConfig(weight_banks=2)),
            ValueError,
            r"^buffers.weight_banks = 2 needs an even number of array rows and of weight words "
            r"\(rows 3, 4096 words of 16 bytes\)$",
        ),
        (
            lambda: AccelConfig(buffers=BufferConfig(weight_bytes=100)),
            ValueError,
            r"buffers.weight_bytes = 100 is too small for a 16x16 array \(needs >= 512\)",
        ),
        (
            lambda: AccelConfig.from_dict({"arrays": {}}),
            ValueError,
            r"unknown config key 'arrays'",
        ),
        (
            lambda: AccelConfig.from_dict({"buffers": {"line_bytes": 4}}),
            ValueError,
            r"unknown config key buffers.'line_bytes'",
        ),
        (lambda: AccelConfig.from_dict({"array": 4}), TypeError, r"config.array must be a table"),
    ],
)
def test_invalid(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_invalid_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[array\nrows = 4")
    with pytest.raises(ValueError, match=r"invalid TOML"):
        config.load(path)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("[array]\nrows = 0\n", ValueError, "array.rows must be >= 2, not 0"),
        ('[array]\nrows = "8"\n', TypeError, "array.rows must be an int, not '8'"),
        ("[dram]\nlatency = -1\n", ValueError, "dram.latency must be >= 0, not -1"),
    ],
)
def test_a_bad_value_in_a_file_names_the_file(tmp_path, text, error, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(error, match=f"^{re.escape(f'{path}: {message}')}$"):
        config.load(path)


def test_the_clock_says_where_it_comes_from():
    """DESIGN.md §2.6: an ASIC preset's clock is an assumption, and says so in every report
    (the config's ``clock_source`` is in every JSON report and TOML, ``clock_text`` in the
    text reports); a measured clock names its measurement and does not survive a change of
    the design it was measured on."""
    for name in ("edge", "server"):
        cfg = config.preset(name)
        assert cfg.clock_source.startswith("assumed: an ASIC target clock, not measured")
        assert not cfg.clock_measured
        assert cfg.clock_text == f"{cfg.clock_mhz:g} MHz (assumed)"
        assert cfg.to_dict()["clock_source"] == cfg.clock_source
        assert f'clock_source = "{cfg.clock_source}"' in cfg.to_toml()
    measured = config.preset("edge").replace(clock_mhz=123.0, clock_source="measured: by hand")
    assert measured.clock_measured and measured.clock_text == "123 MHz (measured)"
    assert measured.replace(name="renamed").clock_measured
    assert measured.replace(array={"rows": 8}).clock_source == "assumed"
    assert measured.replace(clock_mhz=200.0).clock_source == "assumed"
    assert AccelConfig.from_dict(measured.to_dict()) == measured
    assert AccelConfig.from_dict({"clock_mhz": 50.0}, base=measured).clock_source == "assumed"
    with pytest.raises(ValueError, match=r"clock_source must start with 'assumed' or 'measured'"):
        AccelConfig(clock_source="guessed")
