"""Program files: a header (magic, format and ISA version, config digest, lengths, CRC32) that
rejects every damaged or foreign file with a message saying what is wrong."""

from __future__ import annotations

import dataclasses
import json
import zlib

import numpy as np
import pytest

from accel import config, isa
from accel.compiler import compile
from accel.program import _HEADER, FORMAT_VERSION, Program
from tests.layers import zoo_qnet


@pytest.fixture(scope="module")
def program() -> Program:
    return compile(zoo_qnet("tinyconv"), config.preset("tiny"))


@pytest.fixture(scope="module")
def data(program) -> bytes:
    return program.to_bytes()


def reheader(data: bytes, **fields) -> bytes:
    """``data`` with some header fields replaced (the CRC recomputed unless given)."""
    names = ("magic", "version", "isa", "digest", "meta", "code", "constants", "crc")
    values = dict(zip(names, _HEADER.unpack_from(data), strict=True))
    payload = data[_HEADER.size :]
    if "payload" in fields:
        payload = fields.pop("payload")
        values["meta"] = fields.pop("meta", values["meta"])
        values["crc"] = zlib.crc32(payload)
    values.update(fields)
    return _HEADER.pack(*(values[n] for n in names)) + payload


def test_round_trip_is_exact(program, data):
    loaded = Program.from_bytes(data)
    assert loaded.streams == program.streams and loaded.config == program.config
    assert loaded.layers == program.layers and loaded.inputs == program.inputs
    np.testing.assert_array_equal(loaded.constants, program.constants, strict=True)
    assert loaded.to_bytes() == data


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: b"hello world, not a program", r"not an accel program \(bad magic\)"),
        (lambda d: d[:20], r"truncated: 20 bytes, shorter than the header"),
        (lambda d: d[:-1], r"truncated: \d+ bytes, the header says \d+"),
        (lambda d: d + b"junk", r"^4 unexpected bytes after the program's end"),
        (lambda d: reheader(d, version=FORMAT_VERSION + 1), r"program file format 3"),
        (lambda d: reheader(d, isa=99), r"ISA version 99, this tool reads 2"),
        (lambda d: reheader(d, digest=b"0123456789abcdef"), r"config digest 0123456789abcdef"),
    ],
    ids=["foreign", "short", "truncated", "trailing", "format", "isa", "digest"],
)
def test_damaged_files_are_rejected_by_name(data, damage, message):
    with pytest.raises(ValueError, match=message):
        Program.from_bytes(damage(data))


def test_every_flipped_bit_of_the_contents_is_caught(data):
    rng = np.random.default_rng(0)
    for position in rng.integers(_HEADER.size, len(data), size=200):
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(8))
        with pytest.raises(ValueError, match="corrupt: the CRC32"):
            Program.from_bytes(bytes(flipped))


def test_a_consistent_but_edited_config_is_caught_by_the_digest(data):
    meta_len = _HEADER.unpack_from(data)[4]
    meta = json.loads(data[_HEADER.size : _HEADER.size + meta_len])
    meta["config"]["clock_mhz"] = 123.0
    edited = json.dumps(meta).encode()
    payload = edited + data[_HEADER.size + meta_len :]
    with pytest.raises(ValueError, match=r"is not the digest \w+ of the config it carries"):
        Program.from_bytes(reheader(data, payload=payload, meta=len(edited)))


def test_load_names_the_file(tmp_path, data):
    path = tmp_path / "prog.bin"
    path.write_bytes(data[:-3])
    with pytest.raises(ValueError, match=rf"^{path}: truncated"):
        Program.load(path)


def test_header_layout_is_pinned():
    """docs/isa.md documents these 56 bytes; changing them needs a new FORMAT_VERSION."""
    assert (_HEADER.format, _HEADER.size, FORMAT_VERSION) == ("<8sII16sIQQI", 56, 2)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(taps_h=2, taps_w=3), r"depthwise taps 2x3 must be 1\.\.4 in one pass"),
        (dict(taps_h=0, taps_w=3), r"depthwise taps 0x3 must be 1\.\.4"),
        (
            dict(taps_h=1, taps_w=3, kernel_h=3),
            r"depthwise taps 1x3 must be 1\.\.4 in one pass \(ct_count = kernel_h",
        ),
        (
            dict(taps_h=1, taps_w=3, mode=isa.ComputeMode.VMAX),
            "depthwise needs ARRAY mode and rows == cols",
        ),
    ],
)
def test_a_depthwise_instruction_the_array_cannot_run_is_rejected(program, changes, message):
    """A depthwise COMPUTE with more taps than array rows, none, several passes or a vector
    mode is rejected before it runs, naming the instruction."""
    streams = dict(program.streams)
    computes = list(streams[isa.Engine.COMPUTE])
    changes = {"kernel_h": 1, "kernel_w": 1, **changes}
    computes[0] = dataclasses.replace(computes[0], depthwise=1, **changes)
    streams[isa.Engine.COMPUTE] = computes
    bad = dataclasses.replace(program, streams=streams)
    with pytest.raises(ValueError, match=r"^COMPUTE\[0\] \(layer \d+\): " + message):
        bad.validate()
