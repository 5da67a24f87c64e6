"""Files at the boundary: inputs read with their name on every error, outputs written whole
or not at all.

:func:`read_text` / :func:`read_bytes` read an input file; every failure (missing, a
directory, unreadable, not UTF-8 text) becomes one ``ValueError`` naming the file and what is
wrong with it.

A command that writes files stages them first and commits them together at the end:

* :class:`OutputDir` for a directory of known files (``accel simulate -o DIR``, ``accel
  report``, ``accel generate``, ``accel sweep``): files are written into a hidden staging
  directory inside it, then moved into place one rename each, with Ctrl-C held off for those
  few microseconds; files of earlier runs that this run does not write (a ``trace.json`` of a
  previous ``report`` when this one has ``--no-trace``) are removed, so the directory holds
  only files of the run that wrote it last. Files the tool does not own are never touched.
* :class:`OutputFile` for a single named file (``accel compile -o prog.bin``, ``--trace``,
  ``--vcd``, ``accel config -o``): a temporary file next to it, renamed over it on success.

Both are created before the work starts, so an unwritable or wrong destination is reported
before minutes of simulation, and both clean up their temporary files when the run fails or
is interrupted: the previous outputs stay as they were.

One output is written incrementally, by design: ``accel sweep``'s ``sweep.csv``
(:func:`accel.sweep.sweep_to_directory`). So that a long sweep shows its results as they
come and can resume after an interruption, it is rewritten whole at the start (a temporary
name, then a rename: the header and the rows of an earlier run that this one reuses), then
one whole row is appended and flushed per finished point; the file is valid CSV with its
header whenever it is read, and an interrupted sweep leaves the rows of the points that
finished. At the end it is replaced whole (through :class:`OutputDir`) by the final table in
grid order with the Pareto flags. The program cache (:mod:`accel.cache`) writes each entry
to a temporary name and renames it, as here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["OutputDir", "OutputError", "OutputFile", "read_bytes", "read_text"]


class OutputError(ValueError):
    """An output that cannot be written: the path and the reason."""


def read_bytes(path: str | os.PathLike[str], *, what: str = "file") -> bytes:
    """The contents of input ``path``; ``ValueError`` naming it when it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {str(path)!r} is a directory, not a file") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(f"{what} {str(path)!r} cannot be read ({reason})") from None


def read_text(path: str | os.PathLike[str], *, what: str = "file") -> str:
    """Input ``path`` as UTF-8 text; ``ValueError`` naming it when it cannot be read or is
    not text (with the offset of the first byte that is not UTF-8)."""
    data = read_bytes(path, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = f"byte {error.start} is 0x{data[error.start]:02x}"
        raise ValueError(f"{what} {str(path)!r} is not UTF-8 text ({bad})") from None


def _describe(error: OSError, path: Path) -> str:
    reason = error.strerror or type(error).__name__
    return f"{path}: cannot write here ({reason})"


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold off SIGINT (Ctrl-C) until the block is done, then deliver it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[object] = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


class OutputFile:
    """One output file, written to a temporary name beside ``path`` and renamed over it.

    Use as a context manager; :attr:`temporary` is the path to write (pass it to a writer
    that streams), or call :meth:`write_bytes` / :meth:`write_text`. The rename happens when
    the block ends without an exception; otherwise the temporary file is removed.
    """

    def __init__(self, path: str | os.PathLike[str], *, what: str = "output") -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputError(f"{what} {str(self.path)!r} is a directory, not a file")
        parent = self.path.parent
        if not parent.is_dir():
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise OutputError(_describe(error, parent)) from None
        if self.path.exists() and not self.path.is_file():
            raise OutputError(f"{what} {str(self.path)!r} exists and is not a regular file")
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent)
        except OSError as error:
            raise OutputError(_describe(error, parent)) from None
        os.close(fd)
        self.temporary = Path(name)
        self._done = False

    def write_bytes(self, data: bytes) -> None:
        self.temporary.write_bytes(data)

    def write_text(self, text: str) -> None:
        self.temporary.write_text(text)

    def commit(self) -> Path:
        """Rename the temporary file over :attr:`path`; returns :attr:`path`."""
        with _uninterrupted():
            os.replace(self.temporary, self.path)
            self._done = True
        return self.path

    def discard(self) -> None:
        if not self._done:
            self.temporary.unlink(missing_ok=True)
            self._done = True

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


class OutputDir:
    """A directory of known output files, staged and committed together.

    Parameters
    ----------
    directory:
        Created if missing; must not be an existing non-directory.
    owned:
        Every file name (or glob pattern) this command may write there; after a commit,
        owned files that this run did not write are removed.
    """

    def __init__(
        self, directory: str | os.PathLike[str], owned: Iterable[str], *, what: str = "output"
    ) -> None:
        self.directory = Path(directory)
        self._owned = tuple(owned)
        if self.directory.exists() and not self.directory.is_dir():
            raise OutputError(f"{what} {str(self.directory)!r} exists and is not a directory")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix=".accel-staging-", dir=self.directory))
        except OSError as error:
            raise OutputError(_describe(error, self.directory)) from None
        self._done = False

    @property
    def staging(self) -> Path:
        """The hidden directory files are written to until :meth:`commit`."""
        return self._staging

    def path(self, name: str) -> Path:
        """Where to write file ``name`` now (inside the staging directory)."""
        if Path(name).name != name:
            raise ValueError(f"output names are plain file names, not {name!r}")
        return self._staging / name

    def write_bytes(self, name: str, data: bytes) -> Path:
        self.path(name).write_bytes(data)
        return self.directory / name

    def write_text(self, name: str, text: str) -> Path:
        self.path(name).write_text(text)
        return self.directory / name

    def commit(self) -> list[Path]:
        """Move every staged file into place and remove this command's stale files."""
        written = sorted(p.name for p in self._staging.iterdir())
        stale = {
            p
            for pattern in self._owned
            for p in self.directory.glob(pattern)
            if p.is_file() and p.name not in written
        }
        with _uninterrupted():
            for name in written:
                os.replace(self._staging / name, self.directory / name)
            for path in stale:
                path.unlink(missing_ok=True)
            self._staging.rmdir()
            self._done = True
        return [self.directory / name for name in written]

    def discard(self) -> None:
        if not self._done:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._done = True

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            if not self._done:
                self.commit()
        else:
            self.discard()
