"""One validation layer for every user-supplied value: numbers, names, paths, lists, mappings,
plain data (a parsed YAML/JSON document) and structure files.

Used at the edges — the CLI (:mod:`hetflow.cli` wraps every click option with
:func:`cli_type`), the workflow-file loader (:mod:`hetflow.workflows.wfile`),
:class:`~hetflow.calculators.base.CalcSpec` and the job renderer
(:mod:`hetflow.workflows._jobscript`).  Every check raises :class:`~hetflow.errors.InputError`
with a one-line message that names the value (``what``) and shows what was given; callers
that know more context (``wf.yaml: structures[2]: …``) prefix it.

Numbers are finite (NaN and ±inf never pass), booleans are not numbers, integers are integral.
Text is valid Unicode without control characters (a non-UTF-8 file name arrives in Python as
lone surrogates and is rejected here, before it reaches a database or a terminal).  Files are
regular files (never a FIFO or a device, which would block a reader) of bounded size, opened
without blocking.  Structure files with a count header (xyz/extxyz, POSCAR) are checked
against their length before ASE reads them, so a header claiming 10⁹ atoms fails at once;
a CIF's cell lengths and angles are checked the same way.

Outputs follow one rule (:func:`output_file`): a new name or a regular file, never a FIFO, a
device, a directory or a socket.  Size-like inputs follow one table (:data:`SIZES`), whatever
their type and wherever they come from; a calculation's periodic cell is checked by
:func:`calc_cell` before a worker starts.
"""

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


# ----------------------------------------------------------------------------- structure files
_XYZ_SUFFIXES = (".xyz", ".extxyz")


def structure_file(path: Any, what: str = "structure file", *, max_bytes: int = MAX_STRUCTURE_BYTES) -> Path:
    """Check a structure file before ASE parses it: a regular file of bounded size and, for
    formats with an atom-count header (xyz/extxyz, POSCAR/CONTCAR/.vasp), counts that fit in
    the file.  Returns the path."""
    p = regular_file(path, what, max_bytes=max_bytes, missing=f"{what} not found: {user_path(path, what)}")
    low = p.name.lower()
    if low.endswith(_XYZ_SUFFIXES):
        _check_xyz_counts(read_bytes(p, what, max_bytes=max_bytes), p)
    elif low.endswith(".vasp") or low.startswith(("poscar", "contcar")):
        _check_poscar_counts(read_bytes(p, what, max_bytes=max_bytes), p)
    elif low.endswith(".cif"):
        _check_cif_cell(read_bytes(p, what, max_bytes=max_bytes), p)
    return p


_CIF_CELL = re.compile(rb"^\s*_cell_(length_[abc]|angle_(?:alpha|beta|gamma))\s+([-+0-9.eE]+)", re.M)


def _check_cif_cell(data: bytes, p: Path) -> None:
    """Cell lengths > 0 and angles in (0°, 180°) (ASE's reader fails on others with a bare
    AssertionError, or reads a zero-length cell as a molecule)."""
    for m in _CIF_CELL.finditer(data):
        key, raw = m.group(1).decode(), m.group(2).decode()
        try:
            v = float(raw)
        except ValueError:
            continue  # not a plain number: the reader's own message
        bad = not math.isfinite(v) or (v <= 0 if key.startswith("length") else not 0 < v < 180)
        if bad:
            rule = "positive (Å)" if key.startswith("length") else "between 0 and 180 (degrees)"
            raise InputError(f"{p.name}: _cell_{key} is {raw}; a crystal cell needs it {rule} "
                             "(a cell of zero volume)")


def _check_xyz_counts(data: bytes, p: Path) -> None:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    n, i, frame = len(lines), 0, 0
    while i < n:
        head = lines[i].strip()
        if not head:
            break  # ASE stops at the first blank header line as well
        try:
            natoms = int(head)
        except ValueError:
            return  # not a count: ASE's own error message is clear enough
        if natoms < 0:
            raise InputError(f"{p.name}: frame {frame} header claims {natoms} atoms")
        if i + 2 + natoms > n:
            raise InputError(f"{p.name}: frame {frame} header (line {i + 1}) claims {natoms} atoms but only "
                             f"{max(0, n - i - 2)} line(s) follow")
        i += 2 + natoms
        while i < n and lines[i].lstrip().startswith(b"VEC"):
            i += 1
        frame += 1


def _check_poscar_counts(data: bytes, p: Path) -> None:
    lines = data.split(b"\n")
    for k in (5, 6):  # counts line: 6th (VASP 4) or 7th (VASP 5, after the symbols line)
        if k >= len(lines):
            return
        words = lines[k].split()
        if words and all(re.fullmatch(rb"\d+", w) for w in words):
            total = sum(int(w) for w in words)
            if total > len(lines):
                raise InputError(f"{p.name}: the counts line claims {total} atoms but the file has "
                                 f"{len(lines)} lines")
            return


def read_failure(exc: BaseException) -> str:
    """Why a structure reader failed, in one line: its message's first line, or — for a bare
    internal check (``AssertionError``, ``IndexError`` … without a message) — that the file is
    malformed."""
    text = printable(str(exc).splitlines()[0]) if str(exc).strip() else ""
    return text or f"malformed file (the reader stopped with a bare {type(exc).__name__})"


def ordered_occupancies(atoms: Any, source: str) -> None:
    """A structure read from a CIF has no partial occupancies (ASE keeps them in
    ``info["occupancy"]`` and silently takes one species per site)."""
    occ = getattr(atoms, "info", {}).get("occupancy") if atoms is not None else None
    if not occ:
        return
    for site, species in occ.items():
        try:
            items = dict(species)
        except (TypeError, ValueError):
            continue
        total = sum(float(v) for v in items.values())
        if len(items) > 1 or any(float(v) < 1 - 1e-6 for v in items.values()) or total < 1 - 1e-6:
            detail = " + ".join(f"{el} {float(v):g}" for el, v in items.items())
            raise InputError(f"{source} has partial occupancies (site {site}: {detail}); hetflow needs an "
                             "ordered structure — order it first (e.g. pymatgen's "
                             "OrderDisorderedStructureTransformation)")


# ----------------------------------------------------------------------------- model sizes
#: largest number of octahedra n1·n2·n3 a nanocrystal/heterostructure ``size`` may ask for
#: (8×8×8 ≈ 3000 atoms takes 2 GB and 25 s to build; 16³ needs more than 20 GB)
MAX_OCTAHEDRA = 512
#: largest chalcohalide thickness (half cells of b, ≈ 7.3 Å each; the paper's model has 3)
MAX_PARTNER_CELLS = 32
#: largest slab repetition per in-plane direction and in total (partner a × c cells)
MAX_INPLANE = 64
MAX_INPLANE_CELLS = 256
#: largest number of randomised growths of a perovskite fragment (default 24)
MAX_TRIALS = 10_000
#: largest count of anything else a builder enumerates (configurations, products, layers)
MAX_COUNT = 10_000
#: largest periodic cell edge a calculation accepts (Å): a 10⁶ Å cell makes the periodic
#: backends allocate tens of GB before failing
MAX_CELL_LENGTH = 1000.0
#: smallest cell volume per atom of a periodic calculation (Å³): a zero-volume cell is refused
MIN_CELL_VOLUME_PER_ATOM = 1.0


def size3(value: Any, what: str = "size") -> tuple[int, int, int]:
    """Three positive integers (octahedra n1, n2, n3) with n1·n2·n3 ≤ :data:`MAX_OCTAHEDRA`.
    Integral floats (``2.0``) count as integers; strings, booleans and fractions are refused."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise InputError(f"{what} must be three integers (n1, n2, n3), got {shown(value)}")
    t = tuple(integer(v, what, lo=1, hi=MAX_OCTAHEDRA) for v in value)
    if t[0] * t[1] * t[2] > MAX_OCTAHEDRA:
        raise InputError(f"{what} {t} asks for {t[0] * t[1] * t[2]} octahedra (at most {MAX_OCTAHEDRA}: "
                         "larger models do not fit in memory)")
    return t  # type: ignore[return-value]


def inplane2(value: Any, what: str = "inplane") -> tuple[int, int]:
    """Two positive integers (slab repetitions m1, m2), each ≤ :data:`MAX_INPLANE`, with
    m1·m2 ≤ :data:`MAX_INPLANE_CELLS`."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InputError(f"{what} must be two integers (m1, m2), got {shown(value)}")
    t = tuple(integer(v, what, lo=1, hi=MAX_INPLANE) for v in value)
    if t[0] * t[1] > MAX_INPLANE_CELLS:
        raise InputError(f"{what} {t} asks for {t[0] * t[1]} in-plane cells (at most {MAX_INPLANE_CELLS})")
    return t  # type: ignore[return-value]


def _bounded(lo: int, hi: int):
    def check(value: Any, what: str) -> int:
        return integer(value, what, lo=lo, hi=hi)
    return check


#: every size-like parameter, by the name it has in the builders, the CLI (``--partner-cells``
#: → ``partner_cells``) and workflow files (``params: {partner_cells: …}``): one checker each,
#: strict about types (no strings, booleans or fractions), bounded above, run before anything
#: is allocated.  The CLI (:mod:`hetflow.cli`), the workflow loader and the builders' Python
#: entry points all call :func:`check_size`.
SIZES: dict[str, Any] = {
    "size": size3,
    "inplane": inplane2,
    "partner_cells": _bounded(1, MAX_PARTNER_CELLS),
    "perovskite_cells": _bounded(1, MAX_OCTAHEDRA),
    "trials": _bounded(0, MAX_TRIALS),
    "n_units": _bounded(2, 27),
    "n_zn": _bounded(1, 2),
    "n_bim": _bounded(0, 8),
    "n_max": _bounded(1, MAX_COUNT),
    "max_products": _bounded(1, MAX_COUNT),
    "products": _bounded(1, MAX_COUNT),
    "max_configs": _bounded(1, MAX_COUNT),
    "k": _bounded(1, MAX_COUNT),
}


def check_size(name: str, value: Any, what: str | None = None) -> Any:
    """``value`` of the size-like parameter ``name`` checked by its rule in :data:`SIZES`
    (returned as ints / a tuple of ints); a name without a rule is returned unchanged."""
    rule = SIZES.get(name)
    return value if rule is None else rule(value, what or name)


def int_list(text_value: Any, what: str, *, lo: int = -MAX_COUNT, hi: int = MAX_COUNT) -> list[int]:
    """Integers separated by commas or spaces (``"0,1"``, ``"-2"``), each in ``[lo, hi]``."""
    if not isinstance(text_value, str):
        raise InputError(f"{what} must be integers separated by commas, got {shown(text_value)}")
    return [integer(w, what, lo=lo, hi=hi, from_text=True) for w in text_value.replace(",", " ").split()]


def crystal_cell(atoms: Any, source: str) -> None:
    """A structure read from a crystal file (CIF) has a cell of three independent vectors
    (a zero-length or flat cell is a malformed file, which ASE reads as a molecule)."""
    import numpy as np

    cell = np.asarray(atoms.cell[:], dtype=float)
    vol = abs(float(np.linalg.det(cell))) if np.isfinite(cell).all() else float("nan")
    if not vol >= MIN_CELL_VOLUME_PER_ATOM * max(1, len(atoms)):
        lengths = " ".join(f"{x:.3g}" for x in np.linalg.norm(cell, axis=1))
        raise InputError(f"{source}: the crystal cell has (almost) zero volume (lengths {lengths} Å, "
                         f"volume {vol:.3g} Å³); check the _cell_length/_cell_angle entries")


def calc_cell(atoms: Any, periodic: bool, what: str = "structure") -> None:
    """A structure a calculation can start from: finite positions and, when ``periodic``, a
    cell of three independent vectors with a volume ≥ :data:`MIN_CELL_VOLUME_PER_ATOM` per atom
    and edges ≤ :data:`MAX_CELL_LENGTH` Å.  Checked before a worker starts."""
    import numpy as np

    pos = np.asarray(atoms.positions, dtype=float)
    if not np.isfinite(pos).all():
        raise InputError(f"{what} has non-finite (NaN/inf) atomic positions")
    if not periodic:
        return
    cell = np.asarray(atoms.cell[:], dtype=float)
    if not np.isfinite(cell).all():
        raise InputError(f"{what}: the cell has non-finite entries")
    lengths = np.linalg.norm(cell, axis=1)
    vol = abs(float(np.linalg.det(cell)))
    if vol < MIN_CELL_VOLUME_PER_ATOM * max(1, len(atoms)):
        raise InputError(f"{what}: a periodic calculation needs a cell of non-zero volume, got "
                         f"{vol:.3g} Å³ for {len(atoms)} atoms (lengths "
                         f"{' '.join(f'{x:.3g}' for x in lengths)} Å); give a cell or compute it non-periodic")
    if lengths.max() > MAX_CELL_LENGTH:
        raise InputError(f"{what}: periodic cell edge of {lengths.max():.3g} Å is longer than "
                         f"{MAX_CELL_LENGTH:.0f} Å (the periodic backends would need far more memory "
                         "than a machine has); use a smaller cell or compute it non-periodic")


# ----------------------------------------------------------------------------- CLI rules
#: bounds of CLI options by parameter name (ints and floats); options not listed are only
#: required to be finite and of moderate size (|x| ≤ 1e9).  Size-like options are checked
#: as a whole by their rule in :data:`SIZES` as well.
CLI_NUMBERS: dict[str, dict[str, Any]] = {
    "seed": {"lo": 0, "hi": 2**32 - 1},
    "workers": {"lo": 1, "hi": 100_000},
    "threads": {"lo": 1, "hi": 100_000},
    "nodes": {"lo": 1, "hi": 100_000},
    "ntasks": {"lo": 1, "hi": 10_000_000},
    "max_retries": {"lo": 0, "hi": 1000},
    "steps": {"lo": 0, "hi": 10**7},
    "max_steps": {"lo": 0, "hi": 10**7},
    "lines": {"lo": 0, "hi": 10**6},
    "charge": {"lo": -1000, "hi": 1000},
    "multiplicity": {"lo": 1, "hi": 1000},
    "size": {"hi": MAX_OCTAHEDRA},  # the whole triple: SIZES["size"]
    "inplane": {"lo": 1, "hi": MAX_INPLANE},
    "partner_cells": {"lo": 1, "hi": MAX_PARTNER_CELLS},
    "fmax": {"lo": 0, "lo_open": True, "hi": 1000},
    "vacuum": {"lo": 0, "hi": 1000},
    "poll": {"lo": 0, "lo_open": True, "hi": 3600},
}
CLI_DEFAULT_BOUND = 1e9
#: CLI options naming a file hetflow writes: checked by :func:`output_file` before any work
CLI_OUTPUT_FILES = ("output", "json_out", "csv_out")


def executor_count(value: Any, what: str, default: int, lo: int = 1) -> int:
    """An executor's integer option (workers, threads, retries, …): ``default`` when None, else an
    integer in [lo, 100000]; a bad value is a ``WorkflowError`` naming the option."""
    from hetflow.errors import WorkflowError

    if value is None:
        return default
    try:
        return integer(value, what, lo=lo, hi=100_000)
    except InputError as exc:
        raise WorkflowError(str(exc)) from None
