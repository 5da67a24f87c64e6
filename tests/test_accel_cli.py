"""The accel command line: help, version, config."""

import subprocess
import sys

import pytest

from accel import __version__, config
from accel.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"accel {__version__}"


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "config" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: accel" in capsys.readouterr().out


def test_config_round_trip(tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    assert main(["config", "--preset", "tiny", "-o", str(path)]) == 0
    assert config.load(path) == config.preset("tiny")
    assert main(["config", "--config", str(path)]) == 0
    assert "rows = 4" in capsys.readouterr().out


def test_bad_preset_is_an_error(capsys):
    assert main(["config", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "accel.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout
