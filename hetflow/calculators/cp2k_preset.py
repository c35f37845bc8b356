"""CP2K paper preset, settings and data files: what every CP2K input is built from.

Part of the CP2K backend (:mod:`hetflow.calculators.cp2k`, whose module doc lists the settings).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from hetflow.calculators.base import CalcSpec
from hetflow.calculators.cp2k_box import choose_poisson
from hetflow.calculators.recovery import CP2K_LADDER, CP2K_STEPS, ladder_steps
from hetflow.errors import CalculatorError, InputError

PAPER_PRESET: dict[str, Any] = {
    "xc": "PBE",
    "basis": "DZVP-MOLOPT-SR-GTH",
    "basis_file": "BASIS_MOLOPT",
    "potential_family": "GTH-PBE",
    "potential_file": "GTH_POTENTIALS",
    "cutoff": 400.0,
    "rel_cutoff": 60.0,
    "box": (52.0, 68.0, 52.0),
    "max_force": 4.5e-4,
}
CP2K_DEFAULTS: dict[str, Any] = {
    "preset": "paper",
    "max_scf": 50,
    "eps_scf": 1e-6,
    "scf": "ot",
    "nlumo": 20,
    "mpi_ranks": 2,
    "executable": "cp2k.psmp",
    "recovery": True,
}
_KNOWN = set(CP2K_DEFAULTS) | {"box", "vacuum", "cutoff", "max_force", "ldos_groups", "data_dir", "threads",
                               "poisson_solver", "accelerate_options"}
PROJECT = "hetflow"
_SYMBOLS = set(chemical_symbols[1:])


def cp2k_settings(spec: CalcSpec) -> dict[str, Any]:
    """Settings merged over the defaults and the preset, validated."""
    s = spec.settings_dict
    unknown = set(s) - _KNOWN
    if unknown:
        raise InputError(f"unknown CP2K setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KNOWN))}")
    out = CP2K_DEFAULTS | s
    if out["preset"] != "paper":
        raise InputError(f"unknown CP2K preset {out['preset']!r}; available: paper")
    if out["scf"] not in ("ot", "diagonalization"):
        raise InputError(f"setting 'scf' must be 'ot' or 'diagonalization', got {out['scf']!r}")
    out.setdefault("cutoff", PAPER_PRESET["cutoff"])
    out.setdefault("max_force", PAPER_PRESET["max_force"])
    if "box" in s and "vacuum" in s:
        raise InputError("give either 'box' or 'vacuum', not both")
    box = out.get("box", PAPER_PRESET["box"])
    if len(box) != 3 or min(float(x) for x in box) <= 0:
        raise InputError(f"setting 'box' must be three positive lengths in Å, got {box!r}")
    out["box"] = tuple(float(x) for x in box)
    out.setdefault("poisson_solver", "auto")
    ladder_steps(out["recovery"], CP2K_LADDER, CP2K_STEPS)
    return out


def data_dir(settings: dict[str, Any]) -> Path:
    """Directory holding BASIS_MOLOPT and GTH_POTENTIALS."""
    cands = [settings.get("data_dir"), os.environ.get("CP2K_DATA_DIR"), "/usr/share/cp2k/data", "/usr/share/cp2k"]
    for c in cands:
        if c and (Path(c) / PAPER_PRESET["basis_file"]).is_file():
            return Path(c)
    raise CalculatorError(
        "CP2K data files (BASIS_MOLOPT, GTH_POTENTIALS) not found; install cp2k-data or set "
        "settings 'data_dir' / CP2K_DATA_DIR"
    )


def _entries(path: Path) -> dict[str, list[list[str]]]:
    """Element → list of name lists for every entry header in a CP2K basis/potential file."""
    out: dict[str, list[list[str]]] = {}
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in _SYMBOLS and any(c.isalpha() for c in parts[1]):
            out.setdefault(parts[0], []).append(parts[1:])
    return out


def kinds_for(symbols: list[str], ddir: Path) -> dict[str, dict[str, str]]:
    """``{element: {basis_set, potential}}`` with matching valence (``-qN``); InputError if absent."""
    basis = _entries(ddir / PAPER_PRESET["basis_file"])
    pots = _entries(ddir / PAPER_PRESET["potential_file"])
    out: dict[str, dict[str, str]] = {}
    for el in sorted(set(symbols)):
        names = next((n for n in basis.get(el, []) if PAPER_PRESET["basis"] in n), None)
        if names is None:
            raise InputError(
                f"no {PAPER_PRESET['basis']} basis for element {el} in {ddir / PAPER_PRESET['basis_file']}"
            )
        q = next((m.group(1) for n in names for m in [re.search(r"-q(\d+)$", n)] if m), None)
        pot = f"{PAPER_PRESET['potential_family']}-q{q}" if q else PAPER_PRESET["potential_family"]
        if not any(pot in n for n in pots.get(el, [])):
            raise InputError(f"no {pot} pseudopotential for element {el} in {ddir / PAPER_PRESET['potential_file']}")
        out[el] = {"basis_set": PAPER_PRESET["basis"], "potential": pot}
    return out


def ldos_groups(atoms: Atoms, settings: dict[str, Any]) -> dict[str, list[int]]:
    """Atom groups (0-based indices) for ``&LDOS`` lists: settings or the ``domain`` labels."""
    groups = settings.get("ldos_groups")
    if groups is None:
        if "domain" not in atoms.arrays:
            return {}
        dom = np.asarray(atoms.arrays["domain"]).astype(str)
        return {d: [int(i) for i in np.flatnonzero(dom == d)] for d in dict.fromkeys(dom)}
    if not isinstance(groups, dict) or not groups:
        raise InputError("settings 'ldos_groups' must map a group name to atom indices")
    out = {}
    for name, idx in groups.items():
        idx = [int(i) for i in idx]
        if not idx or min(idx) < 0 or max(idx) >= len(atoms):
            raise InputError(f"ldos group {name!r} has indices outside 0…{len(atoms) - 1}")
        out[str(name)] = idx
    return out


def box_for(atoms: Atoms, settings: dict[str, Any]) -> tuple[float, float, float]:
    """Box edges (Å) actually used (see :func:`hetflow.calculators.cp2k_box.choose_poisson`)."""
    return choose_poisson(atoms, settings).box
