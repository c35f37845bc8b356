"""Structure files, model sizes and cells: the checks of :mod:`hetflow.validate` that know structures."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from hetflow.errors import InputError
from hetflow.validate._core import (MAX_STRUCTURE_BYTES, integer, printable, read_bytes, regular_file, shown,
                                    user_path)

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




__all__ = ['structure_file', 'read_failure', 'ordered_occupancies', 'MAX_OCTAHEDRA', 'MAX_PARTNER_CELLS', 'MAX_INPLANE', 'MAX_INPLANE_CELLS', 'MAX_TRIALS', 'MAX_COUNT', 'MAX_CELL_LENGTH', 'MIN_CELL_VOLUME_PER_ATOM', 'size3', 'inplane2', 'SIZES', 'check_size', 'int_list', 'crystal_cell', 'calc_cell']
