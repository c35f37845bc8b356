"""Numbers, text, collections, paths and files: the basic checks of :mod:`hetflow.validate`."""

from __future__ import annotations

import errno
import math
import os
import re
import shlex
import stat
from pathlib import Path
from typing import Any, Iterable

from hetflow.errors import HetflowError, InputError


#: largest workflow/YAML file read (bytes)
MAX_TEXT_FILE_BYTES = 16 * 2**20
#: largest structure file read (bytes); a 10⁶-atom extxyz is ≈ 60 MB
MAX_STRUCTURE_BYTES = 1 * 2**30
#: node and depth limits of a parsed document (YAML aliases can make a tiny file huge)
MAX_DATA_NODES = 200_000
MAX_DATA_DEPTH = 40
#: longest task/workflow name
MAX_NAME_LEN = 200

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown(value: Any, limit: int = 60) -> str:
    """``repr`` of a value for an error message: one line, at most ``limit`` characters,
    lone surrogates (undecodable bytes of a file name) shown as ``\\udcXX``."""
    try:
        r = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__
        r = f"<{type(value).__name__}>"
    r = r.encode("utf-8", "backslashreplace").decode("utf-8")
    r = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", r)
    return r if len(r) <= limit else r[: limit - 1] + "…"


def printable(text: str) -> str:
    """``text`` safe to print on any terminal: lone surrogates escaped, control characters
    (newlines included) replaced by spaces, whitespace runs collapsed."""
    text = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return " ".join(_CONTROL.sub(" ", text).split())


# ----------------------------------------------------------------------------- numbers
def number(value: Any, what: str, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False, integer: bool = False,
           from_text: bool = False) -> float | int:
    """A finite number (``int`` when ``integer``) within ``[lo, hi]`` (open ends with
    ``lo_open``/``hi_open``).  ``from_text`` also parses strings ("12", "0.5", "1e-3")."""
    kind = "an integer" if integer else "a number"
    v = value
    if isinstance(v, str) and from_text:
        s = v.strip()
        try:
            v = int(s) if re.fullmatch(r"[+-]?\d+", s) else float(s)
        except ValueError:
            raise InputError(f"{what} must be {kind}, got {shown(value)}") from None
    if isinstance(v, bool) or not _is_real(v):
        raise InputError(f"{what} must be {kind}, got {shown(value)}")
    if _is_integral_type(v):
        v = int(v)
        if not integer:
            try:
                v = float(v)
            except OverflowError:
                raise InputError(f"{what} must be a finite number, got {shown(value)}") from None
    else:
        v = float(v)
        if not math.isfinite(v):
            raise InputError(f"{what} must be a finite number, got {shown(value)}")
        if integer:
            if not v.is_integer():
                raise InputError(f"{what} must be an integer, got {shown(value)}")
            v = int(v)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise InputError(f"{what} must be {_range_text(lo, hi, lo_open, hi_open, integer)}, got {shown(value)}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise InputError(f"{what} must be {_range_text(lo, hi, lo_open, hi_open, integer)}, got {shown(value)}")
    return v


def integer(value: Any, what: str, *, lo: int | None = None, hi: int | None = None,
            from_text: bool = False) -> int:
    """A finite integer in ``[lo, hi]`` (see :func:`number`)."""
    return int(number(value, what, lo=lo, hi=hi, integer=True, from_text=from_text))


def _is_real(v: Any) -> bool:
    if isinstance(v, (int, float)):
        return True
    try:
        import numpy as np

        return isinstance(v, (np.integer, np.floating))
    except ImportError:  # pragma: no cover
        return False


def _is_integral_type(v: Any) -> bool:
    if isinstance(v, int):
        return True
    try:
        import numpy as np

        return isinstance(v, np.integer)
    except ImportError:  # pragma: no cover
        return False


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _range_text(lo, hi, lo_open, hi_open, integer) -> str:
    if lo is not None and hi is None:
        if integer and lo == 1 and not lo_open:
            return "positive"
        return f"{'>' if lo_open else '>='} {_fmt(lo)}"
    if hi is not None and lo is None:
        return f"{'<' if hi_open else '<='} {_fmt(hi)}"
    if integer and lo == 1 and not lo_open:
        return f"positive and <= {_fmt(hi)}"
    return f"in {'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"


def finite_data(value: Any, what: str) -> None:
    """Every number inside ``value`` (nested lists/dicts/tuples) is finite."""
    stack = [(value, what)]
    while stack:
        v, w = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise InputError(f"{w} must be a finite number, got {shown(v)}")
        if isinstance(v, dict):
            stack.extend((x, f"{w}.{k}") for k, x in v.items())
        elif isinstance(v, (list, tuple)):
            stack.extend((x, w) for x in v)
        elif _is_real(v) and not isinstance(v, (int, bool)) and not math.isfinite(float(v)):
            raise InputError(f"{w} must be a finite number, got {shown(v)}")


# ----------------------------------------------------------------------------- text
def text(value: Any, what: str, *, max_len: int = 4096, allow_empty: bool = False,
         pattern: str | None = None, hint: str = "") -> str:
    """A string of valid Unicode without control characters, at most ``max_len`` long,
    optionally matching ``pattern`` (full match)."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got {type(value).__name__} {shown(value)}")
    if not value and not allow_empty:
        raise InputError(f"{what} must not be empty")
    if _has_surrogates(value):
        raise InputError(f"{what} is not valid UTF-8 text: {shown(value)}")
    if _CONTROL.search(value):
        raise InputError(f"{what} contains a control character (newline, tab, NUL …): {shown(value)}")
    if len(value) > max_len:
        raise InputError(f"{what} is longer than {max_len} characters")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise InputError(f"invalid {what} {shown(value)}" + (f": {hint}" if hint else ""))
    return value


def name(value: Any, what: str = "name") -> str:
    """A task/workflow name: non-empty text, ≤ :data:`MAX_NAME_LEN` characters."""
    return text(value, what, max_len=MAX_NAME_LEN)


def name_from_path(path: Path) -> str:
    """A default name from a file name (stem): undecodable bytes become ``?``, control
    characters ``_`` — so a default never fails where the user gave no name."""
    s = path.stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\ufffd", "?")
    s = _CONTROL.sub("_", s)[:MAX_NAME_LEN]
    return s or "workflow"


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ----------------------------------------------------------------------------- collections
def str_list(value: Any, what: str, *, single: str = "reject", max_items: int = 1000,
             item_pattern: str | None = None) -> list[str]:
    """A list of strings.  A single string: ``single="wrap"`` → ``[value]``,
    ``"split"`` → shell words (``"srun --mpi=pmix"`` → ``["srun", "--mpi=pmix"]``),
    ``"reject"`` → error.  Never split per character."""
    if isinstance(value, str):
        if single == "wrap":
            value = [value]
        elif single == "split":
            try:
                value = shlex.split(value)
            except ValueError as exc:
                raise InputError(f"{what}: cannot split {shown(value)} into words ({exc})") from None
        else:
            raise InputError(f"{what} must be a list of strings, got the string {shown(value)}")
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list of strings, got {type(value).__name__} {shown(value)}")
    if len(value) > max_items:
        raise InputError(f"{what} has more than {max_items} entries")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise InputError(f"{what}[{i}] must be a string, got {type(v).__name__} {shown(v)}")
        out.append(text(str(v), f"{what}[{i}]", pattern=item_pattern))
    return out


def mapping(value: Any, what: str, *, max_items: int = 1000) -> dict[str, Any]:
    """A mapping with string keys (``None`` → ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a mapping (key: value), got {type(value).__name__} {shown(value)}")
    if len(value) > max_items:
        raise InputError(f"{what} has more than {max_items} entries")
    for k in value:
        if not isinstance(k, str):
            raise InputError(f"{what}: keys must be strings, got {type(k).__name__} {shown(k)}")
        text(k, f"{what} key")
    return dict(value)


def plain_data(value: Any, what: str, *, max_nodes: int = MAX_DATA_NODES,
               max_depth: int = MAX_DATA_DEPTH) -> None:
    """A parsed document is a finite tree of plain values: at most ``max_nodes`` nodes
    counted with repetition (YAML anchors/aliases re-use nodes: a "billion laughs" file is a
    few lines), no self-reference, nesting ≤ ``max_depth``, strings valid Unicode."""
    count = 0
    stack: list[tuple[Any, int, tuple[int, ...]]] = [(value, 0, ())]
    while stack:
        v, depth, ancestors = stack.pop()
        count += 1
        if count > max_nodes:
            raise InputError(f"{what} is too large (more than {max_nodes} values, counting "
                             "repeated YAML aliases)")
        if depth > max_depth:
            raise InputError(f"{what} is nested more than {max_depth} levels deep")
        if isinstance(v, str):
            if _has_surrogates(v):
                raise InputError(f"{what} contains text that is not valid UTF-8: {shown(v)}")
            continue
        if isinstance(v, (dict, list, tuple)):
            if id(v) in ancestors:
                raise InputError(f"{what} refers to itself (recursive YAML alias)")
            anc = ancestors + (id(v),)
            items: Iterable[Any] = list(v.keys()) + list(v.values()) if isinstance(v, dict) else v
            stack.extend((x, depth + 1, anc) for x in items)
            continue
        if v is None or isinstance(v, (bool, int, float)):
            continue
        import datetime

        if isinstance(v, (datetime.date, datetime.datetime, bytes)):
            continue
        raise InputError(f"{what} holds an unsupported value of type {type(v).__name__}")


# ----------------------------------------------------------------------------- paths and files
def user_path(value: Any, what: str = "path") -> Path:
    """A path given by the user: text (valid UTF-8, no control characters) or a PathLike."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        raise InputError(f"{what} must be text, got bytes {shown(value)}")
    text(value, what)
    return Path(value).expanduser()


def regular_file(path: Any, what: str = "file", *, max_bytes: int = MAX_STRUCTURE_BYTES,
                 missing: str | None = None) -> Path:
    """``path`` exists and is a regular file of at most ``max_bytes`` (a FIFO, a device or a
    directory is refused rather than read).  ``missing``: message for a missing file."""
    p = user_path(path, what)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(missing or f"{what} not found: {p}") from None
    except OSError as exc:
        raise InputError(f"cannot access {what} {p}: {exc.strerror or exc}") from None
    _check_stat(st, p, what, max_bytes)
    return p


def _check_stat(st: os.stat_result, p: Path, what: str, max_bytes: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {p} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {p} is {_kind(st.st_mode)}; give a regular file")
    if st.st_size > max_bytes:
        raise InputError(f"{what} {p} is too large ({st.st_size / 2**20:.0f} MB > {max_bytes / 2**20:.0f} MB)")


def _kind(mode: int) -> str:
    return "a directory" if stat.S_ISDIR(mode) else \
        "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else \
        "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
        "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def output_file(path: Any, what: str = "output file", *, error: type[HetflowError] = InputError) -> Path:
    """The one output-path rule: ``path`` is a new name or an existing *regular* file (a
    symbolic link is judged by what it points to).  A directory, a FIFO, a device (``/dev/null``)
    or a socket is refused with one line — hetflow never renames a file over it nor writes into
    it.  Used by :mod:`hetflow.atomic` (every file hetflow writes) and by the CLI for ``-o``,
    ``--json``, ``--csv`` before any work is done."""
    try:
        p = user_path(path, what)
    except InputError as exc:
        raise error(str(exc)) from None
    if not p.name or p.name in (".", ".."):
        raise error(f"cannot write {what} {p}: it is a directory, give a file name")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return p
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:  # a parent is a file: the writer says so with its path
            return p
        raise error(f"cannot write {what} {p}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"cannot write {what} {p}: it is a directory, give a file name")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"refusing to write {what} {p}: it is {_kind(st.st_mode)}, not a regular file; "
                    "give the name of a regular file")
    return p


def read_bytes(path: Any, what: str = "file", *, max_bytes: int = MAX_TEXT_FILE_BYTES,
               missing: str | None = None) -> bytes:
    """The bytes of a regular file, opened without blocking (a FIFO swapped in after the
    check still cannot hang the reader) and read up to ``max_bytes``."""
    p = regular_file(path, what, max_bytes=max_bytes, missing=missing)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(missing or f"{what} not found: {p}") from None
    except OSError as exc:
        raise InputError(f"cannot open {what} {p}: {exc.strerror or exc}") from None
    try:
        _check_stat(os.fstat(fd), p, what, max_bytes)
        chunks, total = [], 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            total += len(b)
            if total > max_bytes:
                raise InputError(f"{what} {p} is too large (> {max_bytes / 2**20:.0f} MB)")
            chunks.append(b)
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_text(path: Any, what: str = "file", *, max_bytes: int = MAX_TEXT_FILE_BYTES,
              missing: str | None = None) -> str:
    """UTF-8 text of a regular file (see :func:`read_bytes`); undecodable bytes are an error
    naming their offset."""
    data = read_bytes(path, what, max_bytes=max_bytes, missing=missing)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{Path(str(path)).name}: not UTF-8 text (byte 0x{data[exc.start]:02x} "
                         f"at line {line})") from None




__all__ = ['MAX_TEXT_FILE_BYTES', 'MAX_STRUCTURE_BYTES', 'MAX_DATA_NODES', 'MAX_DATA_DEPTH', 'MAX_NAME_LEN', 'shown', 'printable', 'number', 'integer', 'finite_data', 'text', 'name', 'name_from_path', 'str_list', 'mapping', 'plain_data', 'user_path', 'regular_file', 'output_file', 'read_bytes', 'read_text']
