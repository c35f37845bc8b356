"""Phase registry: name → periodic :class:`ase.Atoms`, with source and citation.

Every bundled phase is built from its space group and Wyckoff positions (see
``docs/PHASES.md``) with :meth:`pymatgen.core.Structure.from_spacegroup`; derived phases
say what they are derived from and how.  Users can add phases from CIF files with
:func:`register_cif`.

>>> from hetflow.structures.phases import get_phase
>>> atoms = get_phase("CsPbCl3")          # cubic, a = 5.605 Å
>>> atoms.get_chemical_formula()
'Cl3CsPb'
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms

from hetflow.errors import InputError, StructureError, UnknownPhaseError

__all__ = [
    "Phase",
    "get_phase",
    "get_entry",
    "list_phases",
    "register_cif",
    "register_phase",
    "PEROVSKITE_A",
]

#: in-plane perovskite-equivalent spacing of Pb4S3Cl2 measured by Livakas et al. (Å)
PB4S3CL2_SPACING = 5.73

#: Lattice parameter of the cubic perovskites used as pseudo-cubic references (Å)
PEROVSKITE_A = {"CsPbCl3": 5.605, "CsPbBr3": 5.874, "CsPbI3-alpha": 6.2894}


@dataclass
class Phase:
    """A registered phase.

    name: registry key.  kind: "bulk" (periodic) or "molecule" (finite, no cell).
    spacegroup: Hermann–Mauguin symbol as published (setting included).
    citation: where the numbers come from.  derived_from / derivation: for derived phases.
    family: "perovskite", "chalcohalide", "lead-halide", "molecule" or "user".
    """

    name: str
    builder: Callable[[], Atoms]
    spacegroup: str
    citation: str
    kind: str = "bulk"
    family: str = "user"
    derived_from: str | None = None
    derivation: str | None = None
    aliases: tuple[str, ...] = ()
    _cache: Atoms | None = field(default=None, repr=False)

    def atoms(self) -> Atoms:
        """A fresh copy of the phase's structure."""
        if self._cache is None:
            a = self.builder()
            a.info.update(
                phase=self.name,
                spacegroup=self.spacegroup,
                citation=self.citation,
                family=self.family,
            )
            if self.derived_from:
                a.info["derived_from"] = self.derived_from
            self._cache = a
        return self._cache.copy()


_REGISTRY: dict[str, Phase] = {}


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace("α", "alpha").replace("γ", "gamma").replace("δ", "delta")


def register_phase(phase: Phase, overwrite: bool = False) -> Phase:
    """Add a phase (and its aliases) to the registry."""
    for n in (phase.name, *phase.aliases):
        k = _key(n)
        if k in _REGISTRY and not overwrite and _REGISTRY[k].name != phase.name:
            raise InputError(f"phase name {n!r} is already registered")
        _REGISTRY[k] = phase
    return phase


def get_entry(name: str) -> Phase:
    """The :class:`Phase` registered under ``name`` (case-insensitive; aliases accepted)."""
    try:
        return _REGISTRY[_key(name)]
    except KeyError:
        known = ", ".join(sorted({p.name for p in _REGISTRY.values()}))
        raise UnknownPhaseError(f"unknown phase {name!r}; registered phases: {known}") from None


def get_phase(name: str) -> Atoms:
    """A copy of the registered phase ``name`` as :class:`ase.Atoms` (Å)."""
    return get_entry(name).atoms()


def list_phases() -> list[Phase]:
    """All registered phases, each once, in registration order."""
    seen: dict[str, Phase] = {}
    for p in _REGISTRY.values():
        seen.setdefault(p.name, p)
    return list(seen.values())


# --------------------------------------------------------------------------- builders


def _from_spacegroup(sg: str, abc: tuple[float, float, float], species, coords, angles=(90, 90, 90)) -> Atoms:
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    lat = Lattice.from_parameters(*abc, *angles)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = Structure.from_spacegroup(sg, lat, species, coords)
    atoms = AseAtomsAdaptor.get_atoms(s)
    # keep only plain arrays (pymatgen adds spacegroup_kinds etc. that ASE writers may choke on)
    clean = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=True)
    return clean


def _cubic_perovskite(b: str, x: str, a: float) -> Callable[[], Atoms]:
    return lambda: _from_spacegroup("Pm-3m", (a, a, a), ["Pb" if b == "Pb" else b, "Cs", x],
                                    [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0, 0.5]])


def _pb4s3br2() -> Atoms:
    return _from_spacegroup(
        "Pnma",
        (8.2026, 14.7221, 8.1699),
        ["Pb", "Pb", "Pb", "S", "S", "Br"],
        [
            [0.1281, 0.75, 0.1179],
            [0.4667, 0.75, 0.8174],
            [0.7942, 0.9412, 0.9367],
            [0.8079, 0.75, 0.9991],
            [0.6342, 0.8850, 0.6460],
            [0.4884, 0.9033, 0.1662],
        ],
    )


def pb4s3cl2_scale_factor(spacing: float = PB4S3CL2_SPACING) -> float:
    """Isotropic factor that takes Pb4S3Br2 to Pb4S3Cl2: mean(a, c)/√2 → ``spacing`` (Å)."""
    a, c = 8.2026, 8.1699
    return spacing * math.sqrt(2.0) / (0.5 * (a + c))


def _pb4s3cl2() -> Atoms:
    atoms = _pb4s3br2()
    atoms.symbols[atoms.symbols == "Br"] = "Cl"
    f = pb4s3cl2_scale_factor()
    atoms.set_cell(atoms.cell * f, scale_atoms=True)
    return atoms


_DATA = Path(__file__).with_name("data")


def _bundled_cif(filename: str) -> Callable[[], Atoms]:
    """Loader of a CIF shipped in ``phases/data`` (derived phases; header = the recipe's report)."""

    def build() -> Atoms:
        from pymatgen.core import Structure
        from pymatgen.io.ase import AseAtomsAdaptor

        path = _DATA / filename
        if not path.is_file():
            raise StructureError(f"bundled phase file {path} is missing; reinstall hetflow")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = AseAtomsAdaptor.get_atoms(Structure.from_file(str(path)))
        return Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=True)

    return build


def derivation_report(filename: str) -> dict:
    """The ``# key: value`` header a derived phase's CIF carries (what made it)."""
    import json

    out = {}
    for line in (_DATA / filename).read_text().splitlines():
        if not line.startswith("# ") or ":" not in line:
            continue
        k, v = line[2:].split(":", 1)
        try:
            out[k.strip()] = json.loads(v)
        except ValueError:
            continue
    return out


def _molecule(metal: str, halide: str, bond: float, angle_deg: float) -> Callable[[], Atoms]:
    def build() -> Atoms:
        half = math.radians(angle_deg) / 2
        pos = [
            [0.0, 0.0, 0.0],
            [bond * math.sin(half), 0.0, bond * math.cos(half)],
            [-bond * math.sin(half), 0.0, bond * math.cos(half)],
        ]
        return Atoms([metal, halide, halide], positions=pos, pbc=False)

    return build


_ALPHA_I = "Trots & Myagkota, J. Phys. Chem. Solids 69, 2520 (2008)"

for _p in [
    Phase("CsPbCl3", _cubic_perovskite("Pb", "Cl", 5.605), "Pm-3m",
          "cubic setting used for CsPbCl3 NCs, a = 5.605 Å (Moreira & Dias)", family="perovskite"),
    Phase("CsPbBr3", _cubic_perovskite("Pb", "Br", 5.874), "Pm-3m",
          "cubic high-T CsPbBr3, a = 5.874 Å (docs/PHASES.md; check against a primary source)", family="perovskite"),
    Phase("CsPbI3-alpha", _cubic_perovskite("Pb", "I", 6.2894), "Pm-3m",
          f"α-CsPbI3 at 634 K, a = 6.2894 Å ({_ALPHA_I})", family="perovskite", aliases=("CsPbI3", "alpha-CsPbI3")),
    Phase("CsPbI3-gamma",
          lambda: _from_spacegroup("Pbnm", (8.5766, 8.8561, 12.4722), ["Pb", "Cs", "I", "I"],
                                   [[0.5, 0, 0], [0.0051, -0.0400, 0.25], [0.5620, 0.0011, 0.25],
                                    [0.1973, 0.1946, 0.0358]]),
          "Pbnm", "γ-CsPbI3 at 293 K, Sutton et al., ACS Energy Lett. 3, 1787 (2018); Cs y = −0.0400 in the "
          "setting of B at (½, 0, 0) (the +0.0400 sign gives Cs–I 3.42 Å)",
          family="perovskite", aliases=("gamma-CsPbI3",)),
    Phase("CsPbI3-delta",
          lambda: _from_spacegroup("Pnma", (10.458, 4.801, 17.776), ["Cs", "Pb", "I", "I", "I"],
                                   [[0.0813, 0.75, 0.3279], [0.1618, 0.25, 0.0608], [0.0293, 0.25, 0.8877],
                                    [0.1628, 0.25, 0.4980], [0.2037, 0.75, 0.7127]]),
          "Pnma", f"δ-CsPbI3 cell from {_ALPHA_I}; positions Materials Project mp-540839 (PBE)",
          family="non-perovskite", aliases=("delta-CsPbI3",)),
    Phase("Pb4S3Br2", _pb4s3br2, "Pnma",
          "Toso et al., J. Am. Chem. Soc. 142, 10198 (2020) (3D ED/XRPD, DFT-relaxed positions)",
          family="chalcohalide"),
    Phase("Pb4S3Cl2", _bundled_cif("Pb4S3Cl2.cif"), "Pnma",
          "derived as in Toso et al., Nat. Commun. 13, 3976 (2022) ('adapting the Pb4S3Br2 structure'): "
          "Pb4S3Br2 (Toso et al. 2020) with Br→Cl; cell relaxed with CHGNet (PBE level), ions with GFN1-xTB",
          family="chalcohalide", derived_from="Pb4S3Br2",
          derivation=("Br→Cl in Pb4S3Br2, cell first scaled so that mean(a, c)/√2 = 5.73 Å (Pb4S3Cl2-scaled), then "
                      "ions and cell relaxed with CHGNet to 0.005 eV/Å, then the ions at that cell with periodic "
                      "GFN1-xTB (2×1×2 supercell) to 0.01 eV/Å, symmetrised to Pnma "
                      "(hetflow.recipes.derive_phase; data/Pb4S3Cl2.cif)")),
    Phase("Pb4S3Cl2-scaled", _pb4s3cl2, "Pnma",
          "starting point of the Pb4S3Cl2 derivation (Toso et al., Nat. Commun. 13, 3976 (2022): "
          "'adapting the Pb4S3Br2 structure'); spacing 5.73 Å from Livakas et al.",
          family="chalcohalide", derived_from="Pb4S3Br2",
          derivation=(f"Br→Cl in Pb4S3Br2; cell scaled isotropically by {pb4s3cl2_scale_factor():.5f} so that "
                      f"mean(a, c)/√2 = {PB4S3CL2_SPACING} Å; not relaxed")),
    Phase("PbCl2",
          lambda: _from_spacegroup("Pnma", (7.6715, 4.5480, 9.1711), ["Pb", "Cl", "Cl"],
                                   [[0.2363, 0.75, 0.4094], [0.0172, 0.75, 0.6576], [0.1415, 0.75, 0.0774]]),
          "Pnma", "cotunnite PbCl2, Materials Project mp-23291 (PBE cell)", family="lead-halide"),
    Phase("PbI2",
          lambda: _from_spacegroup("P-3m1", (4.557, 4.557, 6.979), ["Pb", "I"],
                                   [[0, 0, 0], [1 / 3, 2 / 3, 0.265]], angles=(90, 90, 120)),
          "P-3m1", "2H-PbI2 (CdI2 type), a = 4.557, c = 6.979 Å", family="lead-halide"),
    Phase("PbCl2-molecule", _molecule("Pb", "Cl", 2.44, 99.0), "C2v",
          "bent PbCl2 starting geometry, Pb–Cl 2.44 Å, 99° (relax with the model's method)",
          kind="molecule", family="molecule"),
    Phase("PbI2-molecule", _molecule("Pb", "I", 2.80, 99.0), "C2v",
          "bent PbI2 starting geometry, Pb–I 2.80 Å, 99° (relax with the model's method)",
          kind="molecule", family="molecule"),
    Phase("PbBr2-molecule", _molecule("Pb", "Br", 2.60, 98.0), "C2v",
          "bent PbBr2 starting geometry, Pb–Br 2.60 Å, 98° (relax with the model's method)",
          kind="molecule", family="molecule"),
]:
    register_phase(_p)


# --------------------------------------------------------------------------- user phases

#: minimum interatomic distance accepted in a user CIF (Å)
MIN_DISTANCE_CIF = 0.8


def register_cif(path: str | Path, name: str | None = None, citation: str = "user CIF",
                 family: str = "user", overwrite: bool = False) -> Phase:
    """Register a phase read from a CIF file.

    Raises :class:`~hetflow.errors.InputError` for a missing, empty or malformed file and
    :class:`~hetflow.errors.StructureError` when two atoms are closer than 0.8 Å.
    """
    from hetflow import validate

    path = validate.regular_file(path, "CIF file", missing=f"CIF file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"CIF file is empty: {path}")
    try:
        from ase.io import read as _ase_read

        ase_view = _ase_read(str(path), format="cif")
    except Exception:  # noqa: BLE001 - pymatgen below gives the message for malformed files
        ase_view = None
    validate.ordered_occupancies(ase_view, path.name)  # the same refusal as calc and workflow files
    try:
        from pymatgen.core import Structure
        from pymatgen.io.ase import AseAtomsAdaptor

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = Structure.from_file(str(path), merge_tol=0.0)
        atoms = AseAtomsAdaptor.get_atoms(s)
    except Exception as exc:  # pymatgen raises many different types
        raise InputError(f"malformed CIF {path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if len(atoms) == 0:
        raise InputError(f"CIF file {path.name} contains no atoms")
    atoms = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=True)
    dmin, pair = _min_distance(atoms)
    if dmin < MIN_DISTANCE_CIF:
        i, j = pair
        raise StructureError(
            f"CIF {path.name} has overlapping atoms: {atoms[i].symbol}{i} and {atoms[j].symbol}{j} are "
            f"{dmin:.2f} Å apart (< {MIN_DISTANCE_CIF} Å)"
        )
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    from pymatgen.io.ase import AseAtomsAdaptor as _A

    try:
        sg = SpacegroupAnalyzer(_A.get_structure(atoms), symprec=0.05).get_space_group_symbol()
    except Exception:
        sg = "P1"
    frozen = atoms.copy()
    phase = Phase(name or path.stem, lambda: frozen.copy(), sg, f"{citation} ({path.name})", family=family)
    return register_phase(phase, overwrite=overwrite)


def _min_distance(atoms: Atoms) -> tuple[float, tuple[int, int]]:
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2 and not atoms.pbc.any():
        return math.inf, (0, 0)
    i, j, d = neighbor_list("ijd", atoms, 3.0)
    if len(d) == 0:
        return math.inf, (0, 0)
    k = int(np.argmin(d))
    return float(d[k]), (int(i[k]), int(j[k]))
