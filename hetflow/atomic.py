"""Atomic file replacement with unique temporary names.

``write_atomic(path, data)`` writes ``.<name>.tmp.<pid>.<random>.<host>`` next to ``path``,
fsyncs and renames it over ``path`` (atomic on POSIX).  ``path`` must be new or a regular
file: a directory, FIFO, device (``/dev/null``) or socket is refused with an
:class:`~hetflow.errors.OutputError` and nothing is renamed over it (checked before the write
and again right before the rename).  The name is unique per writer, so two
processes writing the same file never collide on the temporary file; a failed write (disk
full, quota) removes its temporary file and raises :class:`~hetflow.errors.OutputError`
naming the path.  Temporary files of a writer that was killed are removed by the next write
of the same file (and by :func:`sweep_stale` over a directory) once their writer is dead.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Callable

from hetflow import procs, validate
from hetflow.errors import OutputError

_TMP = re.compile(r"^\.(?P<name>.+)\.tmp\.(?P<pid>\d+)\.(?P<rand>[0-9a-f]{8})\.(?P<host>.+)$")


def _target(path: str | Path) -> Path:
    """``path`` as an output: new, or an existing regular file (the one output-path rule,
    :func:`hetflow.validate.output_file`: a directory, FIFO, device or socket is refused)."""
    return validate.output_file(path, "output file", error=OutputError)


def _replace(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` over ``path``, checking the rule once more right before (what is at
    ``path`` may have changed while the data were written)."""
    _target(path)
    os.replace(tmp, path)


def tmp_path(path: str | Path) -> Path:
    """A fresh temporary name next to ``path`` for this process."""
    path = _target(path)
    return path.with_name(f".{path.name}.tmp.{os.getpid()}.{secrets.token_hex(4)}.{procs.hostname()}")


def _fail(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def write_atomic(path: str | Path, data: bytes | str, fsync: bool = True) -> Path:
    """Replace ``path`` by ``data`` atomically (see module doc)."""
    path = _target(path)
    sweep_stale(path.parent, path.name)
    tmp = tmp_path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as fh:
            fh.write(raw)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        _replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise _fail(path, exc) from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def write_via(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Atomic replacement for writers that take a file name (e.g. ``ase.io.write``):
    ``writer(tmp)`` then rename."""
    path = _target(path)
    sweep_stale(path.parent, path.name)
    tmp = tmp_path(path)
    try:
        writer(tmp)
        _replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise _fail(path, exc) from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def save_figure(fig, path: str | Path, **kwargs) -> Path:
    """``fig.savefig`` through :func:`write_via` (format from ``path``'s suffix, default png)."""
    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    return write_via(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs))


def _remove(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def is_tmp(name: str) -> bool:
    return _TMP.match(name) is not None


def sweep_stale(directory: str | Path, name: str | None = None, all_hosts: bool = False) -> int:
    """Remove temporary files in ``directory`` (of target ``name`` only, when given) whose
    writer is dead: written on this host by a pid that is gone, or — with ``all_hosts``, when
    the caller knows no writer elsewhere can be running — written on another host.  Returns the number removed."""
    directory = Path(directory)
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for e in entries:
        m = _TMP.match(e.name)
        if not m or (name is not None and m.group("name") != name):
            continue
        if m.group("host") == procs.hostname():
            if procs.pid_alive(int(m.group("pid"))):
                continue  # its writer is still running (possibly this process)
        elif not all_hosts:
            continue
        _remove(Path(e.path))
        removed += 1
    return removed
