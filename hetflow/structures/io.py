"""Writing and reading labelled structures (extxyz keeps ``atoms.arrays`` and ``atoms.info``).

Nested ``info`` values (dicts, lists of lists) are stored as JSON strings in extxyz and
decoded again on read, so a model's provenance survives the round trip.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read, write

from hetflow import validate
from hetflow.atomic import write_via  # unique temporary name, removed when the write fails
from hetflow.errors import InputError, OutputError

_JSON_PREFIX = "json:"


def _encode_info(info: dict) -> dict:
    out = {}
    for k, v in info.items():
        if isinstance(v, (dict, list, tuple)) and not _flat_numeric(v):
            out[k] = _JSON_PREFIX + json.dumps(v, default=_default)
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out


def _flat_numeric(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(
        isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) for x in v)


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _decode_info(info: dict, source: str = "structure file") -> dict:
    out = {}
    for k, v in info.items():
        if isinstance(v, str) and v.startswith(_JSON_PREFIX):
            try:
                out[k] = json.loads(v[len(_JSON_PREFIX):])
            except (ValueError, RecursionError) as exc:
                raise InputError(f"{source}: info {validate.shown(k)} is not valid JSON after 'json:' "
                                 f"({validate.printable(exc)})") from None
        elif isinstance(v, np.ndarray) and v.ndim == 1:
            out[k] = v.tolist()
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out


def write_structure(atoms: Atoms, path: str | Path) -> Path:
    """Write ``atoms`` with labels; format from the suffix (.extxyz, .xyz, .cif, .vasp, …).

    CIF/POSCAR are only written for periodic structures (they need a cell).
    """
    path = validate.output_file(path, "output file", error=OutputError)  # never a FIFO or a device
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".cif", ".vasp") or path.name.startswith("POSCAR"):
        if not atoms.pbc.any() or atoms.cell.rank < 3:
            raise InputError(f"{path.name}: CIF/POSCAR need a periodic cell; write .extxyz for finite models")
        fmt = "cif" if suffix == ".cif" else "vasp"
        return write_via(path, lambda tmp: write(tmp, atoms, format=fmt))
    a = atoms.copy()
    a.info = _encode_info(atoms.info)
    return write_via(path, lambda tmp: write(tmp, a, format="extxyz"))


def read_structure(path: str | Path, index: int | str = -1) -> Atoms:
    """Read a structure (extxyz labels and JSON-encoded info restored).

    The file is checked first (:func:`hetflow.validate.structure_file`: a regular file of
    bounded size whose atom-count header fits the file), and a CIF with partial occupancies
    is refused (:func:`hetflow.validate.ordered_occupancies`)."""
    path = validate.structure_file(path)
    try:
        atoms = read(path, index=index)
    except KeyError as exc:
        raise InputError(f"cannot read {path.name}: unknown element symbol {exc.args[0]!r}") from None
    except Exception as exc:
        raise InputError(f"cannot read {path.name}: {validate.read_failure(exc)}") from None
    if isinstance(atoms, list):
        raise InputError(f"{path.name}: expected one structure, got {len(atoms)}")
    validate.ordered_occupancies(atoms, path.name)
    if path.suffix.lower() == ".cif":
        validate.crystal_cell(atoms, path.name)
    atoms.info = _decode_info(atoms.info, path.name)
    return atoms
