"""Molecular-orbital projections onto atom groups (domains, elements) and band-edge reports.

**Mulliken fraction** of MO i on atom group A (tblite: coefficients C (nao × nmo), overlap S):

    q_A,i = Σ_{μ∈A} Σ_ν C_μi S_μν C_νi,     normalised by Σ_A q_A,i  (= C_iᵀ S C_i = 1 for a
                                             normalised MO)

so the fractions of one MO over a partition of the atoms sum to 1.  Mulliken gross
populations are not bounded: a group's fraction may be slightly negative or above 1 (a few
0.01 for diffuse basis sets); they are not clipped.

**CP2K**: ``MOData.projections`` = ``{group: (nmo,) weight}`` from ``&LDOS`` lists; the weights
of each MO are normalised over the groups given.

**Summaries** (MO data read from a result store or a ``--json`` file): C and S live in the
``.npz`` named by ``MOData.data_file`` (:mod:`hetflow.calculators.mo_io`) and the summary
carries the domain fractions computed when the result was written.  Those are used when the
groups asked for are exactly theirs; any other grouping (elements, overrides) loads C and S
from the file and does the Mulliken sum.

**Projection domains** (:func:`projection_domains`), per atom:

* ``domain == "chalcohalide"`` → ``"chalcohalide"``;
* ``domain == "perovskite"`` → named after the majority halide **of the atom's layer**
  (``layer`` array): a layer whose halides are mostly I is ``"CsPbI3"`` — its Cs and Pb too —
  mostly Cl ``"CsPbCl3"``, mostly Br ``"CsPbBr3"`` (A and B symbols taken from the perovskite).
  A tie goes to the lighter halide (the not-yet-exchanged one in Cl→Br→I exchanges).  A layer
  without halides takes the label of the nearest layer that has some.  So an exchanged layer
  counts as CsPbI3 and the shared interfacial CsX monolayer (layer 0) follows its own halides;
  an isolated exchanged halide in a mostly-Cl layer stays in CsPbCl3.
* any other domain label is kept as is.
* ``overrides`` replaces the rule: a full sequence of names (one per atom) or a mapping
  ``{atom index: name}`` for selected atoms.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from ase import Atoms

from hetflow.calculators.base import MOData
from hetflow.errors import InputError, StructureError

__all__ = [
    "HALIDE_ORDER", "mulliken_atom_populations", "group_fractions", "projection_domains",
    "domain_fractions", "element_fractions", "homo_index", "band_edges", "band_edge_table",
]

HALIDE_ORDER = ("F", "Cl", "Br", "I")


def mulliken_atom_populations(mo: MOData, natoms: int | None = None) -> np.ndarray:
    """(natoms, nmo) Mulliken gross population of each MO on each atom (not normalised).

    Column i sums to C_iᵀ S C_i (1 for a normalised MO).
    """
    if mo.coefficients is None or mo.overlap is None or mo.ao_atom is None:
        raise InputError("MO data has no coefficients/overlap/ao_atom: cannot do a Mulliken projection")
    c = np.asarray(mo.coefficients, float)
    s = np.asarray(mo.overlap, float)
    ao = np.asarray(mo.ao_atom, int)
    if c.ndim != 2 or s.shape != (c.shape[0], c.shape[0]) or ao.shape != (c.shape[0],):
        raise InputError(
            f"inconsistent MO data shapes: C {c.shape}, S {s.shape}, ao_atom {ao.shape}"
        )
    q_ao = c * (s @ c)  # (nao, nmo): C_μi (S C)_μi
    n = int(ao.max()) + 1 if natoms is None else int(natoms)
    if ao.min() < 0 or ao.max() >= n:
        raise InputError(f"ao_atom refers to atom {ao.max()} but the structure has {n} atoms")
    out = np.zeros((n, c.shape[1]))
    np.add.at(out, ao, q_ao)
    return out


def group_fractions(mo: MOData, labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Fraction of each MO on each group of atoms; ``labels`` = group name per atom.

    Uses Mulliken from C and S when present, else ``mo.projections`` (CP2K), whose groups are
    then taken as they are (``labels`` only fixes the order of the groups returned when the
    names agree).  Fractions of each MO sum to 1 over the groups.
    """
    labels = np.asarray(labels).astype(str)
    if mo.coefficients is None and mo.data_file and not (
            mo.projections and set(mo.projections) == set(labels.tolist())):
        from hetflow.calculators.mo_io import load_full

        mo = load_full(mo)
    if mo.coefficients is not None:
        pop = mulliken_atom_populations(mo, natoms=len(labels))
        groups = list(dict.fromkeys(labels.tolist()))
        raw = {g: pop[labels == g].sum(axis=0) for g in groups}
    elif mo.projections:
        raw = {g: np.asarray(v, float) for g, v in mo.projections.items()}
        order = [g for g in dict.fromkeys(labels.tolist()) if g in raw]
        raw = {g: raw[g] for g in order + [g for g in raw if g not in order]}
    else:
        raise InputError("MO data has neither coefficients nor projections")
    total = np.sum(list(raw.values()), axis=0)
    if np.any(np.abs(total) < 1e-12):
        bad = int(np.flatnonzero(np.abs(total) < 1e-12)[0])
        raise InputError(f"MO {bad} has zero weight on all groups: cannot normalise its projection")
    return {g: v / total for g, v in raw.items()}


def _layer_label(symbols: np.ndarray, a: str, b: str) -> str | None:
    hal = [h for h in HALIDE_ORDER if np.any(symbols == h)]
    if not hal:
        return None
    counts = [(int(np.sum(symbols == h)), -HALIDE_ORDER.index(h), h) for h in hal]
    return f"{a}{b}{max(counts)[2]}3"


def projection_domains(atoms: Atoms, overrides: Sequence[str] | Mapping[int, str] | None = None) -> np.ndarray:
    """Projection-domain name of every atom (rule in the module docstring)."""
    n = len(atoms)
    if overrides is not None and not isinstance(overrides, Mapping):
        out = np.asarray(overrides).astype(str)
        if out.shape != (n,):
            raise InputError(f"domain overrides have {out.size} entries for {n} atoms")
        return out
    if "domain" not in atoms.arrays:
        raise StructureError("structure has no per-atom 'domain' array: cannot assign projection domains")
    dom = np.asarray(atoms.arrays["domain"]).astype(str)
    out = dom.astype("<U32").copy()
    out[dom == "chalcohalide"] = "chalcohalide"
    per = dom == "perovskite"
    if per.any():
        if "layer" not in atoms.arrays:
            raise StructureError("structure has no per-atom 'layer' array: cannot assign perovskite domains")
        syms = np.array(atoms.get_chemical_symbols())
        layer = np.asarray(atoms.arrays["layer"]).astype(int)
        role = np.asarray(atoms.arrays["role"]).astype(str) if "role" in atoms.arrays else None
        a = _common(syms[per & (role == "A")] if role is not None else syms[per & np.isin(syms, ["Cs", "Rb", "K", "MA", "FA"])], "Cs")
        b = _common(syms[per & (role == "B")] if role is not None else syms[per & np.isin(syms, ["Pb", "Sn", "Ge"])], "Pb")
        layers = sorted(set(layer[per].tolist()))
        lab = {L: _layer_label(syms[per & (layer == L)], a, b) for L in layers}
        known = [L for L in layers if lab[L] is not None]
        if not known:
            raise StructureError("perovskite domain has no halides")
        for L in layers:
            name = lab[L] or lab[min(known, key=lambda k: (abs(k - L), k))]
            out[per & (layer == L)] = name
    if overrides:
        for i, name in overrides.items():
            if not 0 <= int(i) < n:
                raise InputError(f"domain override for atom {i}, but the structure has {n} atoms")
            out[int(i)] = str(name)
    return out


def _common(values: np.ndarray, default: str) -> str:
    if len(values) == 0:
        return default
    u, c = np.unique(values, return_counts=True)
    return str(u[np.argmax(c)])


def domain_fractions(mo: MOData, atoms: Atoms,
                     overrides: Sequence[str] | Mapping[int, str] | None = None) -> dict[str, np.ndarray]:
    """Fraction of each MO on each projection domain (chalcohalide / CsPbCl3 / CsPbI3 …).

    A summary's stored fractions are used unless ``overrides`` are given and its data file
    allows the Mulliken sum with them."""
    if mo.coefficients is None and mo.projections and (overrides is None or not mo.data_file):
        return group_fractions(mo, list(mo.projections))
    return group_fractions(mo, projection_domains(atoms, overrides))


def element_fractions(mo: MOData, atoms: Atoms) -> dict[str, np.ndarray]:
    """Fraction of each MO on each chemical element (Mulliken)."""
    return group_fractions(mo, atoms.get_chemical_symbols())


def homo_index(mo: MOData, occ_threshold: float = 0.5) -> int:
    """Index (into the arrays as stored) of the highest-energy MO with occupation > ``occ_threshold``."""
    e = np.asarray(mo.eigenvalues, float)
    occ = np.asarray(mo.occupations, float)
    occupied = np.flatnonzero(occ > occ_threshold)
    if len(occupied) == 0:
        raise InputError("no occupied orbital in the MO data")
    return int(occupied[np.argmax(e[occupied])])


def band_edges(mo: MOData, fractions: Mapping[str, np.ndarray], n_below: int = 3, n_above: int = 3,
               occ_threshold: float = 0.5) -> list[dict[str, Any]]:
    """HOMO−n_below … HOMO, LUMO … LUMO+n_above, lowest energy first.

    Each row: ``label`` ("HOMO-1", "LUMO"…), ``index`` (MO index), ``energy_eV``,
    ``occupation``, ``dominant`` (group with the largest fraction), ``fractions`` {group: value}.
    """
    e = np.asarray(mo.eigenvalues, float)
    order = np.argsort(e, kind="stable")
    h = homo_index(mo, occ_threshold)
    pos = int(np.flatnonzero(order == h)[0])
    rows = []
    for k in range(max(0, pos - n_below), min(len(e), pos + 1 + n_above + 1)):
        i = int(order[k])
        off = k - pos
        label = ("HOMO" + (f"{off:+d}" if off else "")) if off <= 0 else ("LUMO" + (f"+{off - 1}" if off > 1 else ""))
        fr = {g: float(v[i]) for g, v in fractions.items()}
        rows.append({"label": label, "index": i, "energy_eV": float(e[i]),
                     "occupation": float(mo.occupations[i]), "dominant": max(fr, key=fr.get),
                     "fractions": fr})
    return rows


def band_edge_table(rows: Sequence[Mapping[str, Any]], title: str = "band edges"):
    """A :class:`rich.table.Table` of :func:`band_edges` rows (fractions in %)."""
    from rich.table import Table

    groups = list(dict.fromkeys(g for r in rows for g in r["fractions"]))
    t = Table(title=title)
    for col in ("MO", "index", "E (eV)", "occ", "dominant", *[f"{g} %" for g in groups]):
        t.add_column(col, justify="left" if col in ("MO", "dominant") else "right")
    for r in reversed(rows):
        t.add_row(r["label"], str(r["index"]), f"{r['energy_eV']:.3f}", f"{r['occupation']:.2f}",
                  r["dominant"], *[f"{100 * r['fractions'].get(g, 0.0):.1f}" for g in groups])
    return t
