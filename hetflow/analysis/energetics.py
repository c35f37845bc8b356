"""Exchange and reaction energetics (eV inside; kcal/mol and kJ/mol only in reports).

Halide exchange of ``x`` halides Y → Z in a heterostructure HS, with the displaced halide
released as PbY2 and the incoming one supplied as PbZ2 (SCIENCE.md, Cl → I):

    HS(x·Y) + (x/2) PbZ2  →  HS(x·Z) + (x/2) PbY2
    ΔE_exchange = [E_HS(x·Z) + (x/2)·E(PbY2) − E_HS(x·Y) − (x/2)·E(PbZ2)] / x      (eV per halide)

The reference stoichiometry is explicit: ``E(PbX2)`` is an energy **per PbX2 formula unit**
from a :class:`Reference` — either relaxed PbX2 molecules in vacuum (``kind="molecule"``,
consistent with non-periodic cluster models) or bulk PbX2 per formula unit (``kind="bulk"``).

``x`` is never taken on trust: :func:`count_exchanged` reads it from the two structures
(site by site) and refuses a pair whose compositions are not related by the reaction.

Also: total/per-halide comparisons of several configurations against one parent (Table S3),
reaction energies with an element-conservation check (ZIF ligand-exchange products) and
energy differences per formula unit between bulk phases (α vs δ CsPbI3).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Sequence

from ase import Atoms
from ase.formula import Formula

from hetflow.analysis.units import from_ev
from hetflow.errors import InputError

__all__ = [
    "Reference", "ExchangeEnergy", "count_exchanged", "exchange_energy",
    "exchange_step", "stepwise_exchange_energies", "cumulative_exchange_energies",
    "exchange_energies_against", "relative_to", "exchange_rows", "markdown_table",
    "check_element_balance", "reaction_energy", "zif_reaction_energy",
    "formula_units", "energy_per_formula_unit", "phase_energy_difference",
    "alpha_delta_difference",
]

HALIDES = ("F", "Cl", "Br", "I")
ReferenceKind = Literal["molecule", "bulk"]


def _atoms_energy(obj: Any) -> tuple[Atoms, float]:
    """Accept ``(atoms, energy_eV)`` or anything with ``.atoms`` and ``.energy`` (CalcResult)."""
    if hasattr(obj, "atoms") and hasattr(obj, "energy"):
        atoms, energy = obj.atoms, obj.energy
    else:
        try:
            atoms, energy = obj
        except (TypeError, ValueError):
            raise InputError(
                f"expected (Atoms, energy_eV) or a CalcResult, got {type(obj).__name__}"
            ) from None
    if not isinstance(atoms, Atoms):
        raise InputError(f"expected an ase.Atoms, got {type(atoms).__name__}")
    energy = float(energy)
    if not math.isfinite(energy):
        raise InputError(f"energy of {atoms.get_chemical_formula()} is not finite ({energy})")
    return atoms, energy


def _check_halide(h: str) -> str:
    if h not in HALIDES:
        raise InputError(f"unknown halide {h!r}; choose one of {', '.join(HALIDES)}")
    return h


# --------------------------------------------------------------------------- reference
@dataclass(frozen=True)
class Reference:
    """Energies of the PbX2 reservoir, eV **per PbX2 formula unit**.

    kind: ``"molecule"`` (relaxed, isolated PbX2 molecules in vacuum) or ``"bulk"`` (bulk PbX2,
        energy of the cell divided by its number of formula units).
    energies: halide symbol → eV per PbX2 unit, e.g. ``{"Cl": -…, "I": -…}``.
    metal: the metal of the reservoir salt (``"Pb"``).
    note: free text saying how the energies were obtained (method, code, relaxation).
    """

    kind: ReferenceKind
    energies: Mapping[str, float]
    metal: str = "Pb"
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("molecule", "bulk"):
            raise InputError(f"unknown reference kind {self.kind!r}; choose molecule or bulk")
        for h, e in self.energies.items():
            _check_halide(h)
            if not math.isfinite(float(e)):
                raise InputError(f"reference energy of {self.formula(h)} is not finite ({e})")

    def formula(self, halide: str) -> str:
        return f"{self.metal}{halide}2"

    def energy(self, halide: str) -> float:
        """eV per formula unit of the reservoir salt of ``halide``."""
        _check_halide(halide)
        if halide not in self.energies:
            raise InputError(
                f"{self.kind} reference has no {self.formula(halide)} energy "
                f"(has: {', '.join(self.formula(h) for h in self.energies) or 'none'})"
            )
        return float(self.energies[halide])

    def describe(self) -> str:
        what = "relaxed molecules in vacuum" if self.kind == "molecule" else "bulk, per formula unit"
        salts = ", ".join(self.formula(h) for h in self.energies)
        return f"{salts} ({what}; eV per {self.metal}X2 unit)" + (f"; {self.note}" if self.note else "")

    @classmethod
    def from_structures(
        cls,
        kind: ReferenceKind,
        entries: Mapping[str, Any],
        metal: str = "Pb",
        note: str = "",
    ) -> "Reference":
        """Build from computed structures: ``{halide: (atoms, energy_eV) or CalcResult}``.

        Each structure must be exactly (metal X2)_n — n = 1 for ``kind="molecule"``, any n ≥ 1
        for ``kind="bulk"`` — otherwise InputError (an unbalanced reference is refused).
        """
        energies: dict[str, float] = {}
        for h, obj in entries.items():
            _check_halide(h)
            atoms, e = _atoms_energy(obj)
            n = _salt_units(atoms, metal, h)
            if kind == "molecule" and n != 1:
                raise InputError(
                    f"molecule reference for {metal}{h}2 must be one molecule, "
                    f"got {atoms.get_chemical_formula()}"
                )
            energies[h] = e / n
        return cls(kind=kind, energies=energies, metal=metal, note=note)


def _salt_units(atoms: Atoms, metal: str, halide: str) -> int:
    c = Counter(atoms.get_chemical_symbols())
    n_m, n_x = c.pop(metal, 0), c.pop(halide, 0)
    if c or n_m == 0 or n_x != 2 * n_m:
        raise InputError(
            f"reference structure {atoms.get_chemical_formula()} is not ({metal}{halide}2)_n"
        )
    return n_m


# --------------------------------------------------------------------------- exchange count
def count_exchanged(parent: Atoms, child: Atoms, from_halide: str = "Cl", to_halide: str = "I",
                    by_site: bool = True) -> int:
    """Number x of ``from_halide`` → ``to_halide`` exchanges that turn ``parent`` into ``child``.

    Compositions must differ by exactly x·from_halide → x·to_halide with x ≥ 1 and nothing else
    changed.  With ``by_site`` (default; needs equal atom counts in the same order, as the
    exchange generators produce) every site whose element changed must be a from → to change.
    Raises InputError when the two structures are inconsistent with the reaction.
    """
    _check_halide(from_halide), _check_halide(to_halide)
    if from_halide == to_halide:
        raise InputError(f"exchange {from_halide}→{to_halide} exchanges nothing")
    fp, fc = parent.get_chemical_formula(), child.get_chemical_formula()
    cp, cc = Counter(parent.get_chemical_symbols()), Counter(child.get_chemical_symbols())
    lost, gained = cp - cc, cc - cp
    x = lost.get(from_halide, 0)
    if x == 0 or dict(lost) != {from_halide: x} or dict(gained) != {to_halide: x}:
        raise InputError(
            f"{fp} → {fc} is not a {from_halide}→{to_halide} exchange "
            f"(lost {dict(lost) or 'nothing'}, gained {dict(gained) or 'nothing'})"
        )
    if by_site:
        if len(parent) != len(child):  # pragma: no cover - guaranteed by the composition check
            raise InputError(f"{fp} and {fc} have different atom counts")
        sp, sc = parent.get_chemical_symbols(), child.get_chemical_symbols()
        changed = [i for i, (a, b) in enumerate(zip(sp, sc)) if a != b]
        bad = [i for i in changed if (sp[i], sc[i]) != (from_halide, to_halide)]
        if bad:
            i = bad[0]
            raise InputError(
                f"site {i} changes {sp[i]}→{sc[i]}, not {from_halide}→{to_halide}: "
                "parent and child atoms are not in the same order or not related by the exchange"
            )
        if len(changed) != x:  # pragma: no cover - implied by the checks above
            raise InputError(f"{len(changed)} sites changed but the composition says {x}")
    return x


# --------------------------------------------------------------------------- exchange energies
def exchange_energy(e_parent: float, e_child: float, x: int, reference: Reference,
                    from_halide: str = "Cl", to_halide: str = "I") -> float:
    """ΔE_exchange in eV **per exchanged halide** for x exchanges (see module docstring)."""
    if x <= 0:
        raise InputError(f"number of exchanged halides must be ≥ 1, got {x}")
    total = (e_child + 0.5 * x * reference.energy(from_halide)) - (e_parent + 0.5 * x * reference.energy(to_halide))
    return total / x


@dataclass(frozen=True)
class ExchangeEnergy:
    """One exchange step ``parent → label``.

    x: halides exchanged in the step; total: ΔE of the whole step (eV);
    per_halide: total / x (eV per exchanged halide).
    """

    label: str
    parent: str
    x: int
    total: float
    per_halide: float
    from_halide: str
    to_halide: str
    reference_kind: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, unit: str = "kcal/mol") -> dict[str, Any]:
        """Row for a report, energies converted to ``unit``."""
        return {
            "step": self.label, "parent": self.parent, "exchange": f"{self.from_halide}→{self.to_halide}",
            "x": self.x, f"ΔE per halide ({unit})": float(from_ev(self.per_halide, unit)),
            f"ΔE total ({unit})": float(from_ev(self.total, unit)), "reference": self.reference_kind,
            **self.extra,
        }


def exchange_step(label: str, parent: Any, child: Any, reference: Reference,
                  from_halide: str = "Cl", to_halide: str = "I", parent_label: str = "parent",
                  by_site: bool = True) -> ExchangeEnergy:
    """ΔE of ``parent → child``; parent/child are ``(atoms, energy_eV)`` or CalcResult."""
    pa, pe = _atoms_energy(parent)
    ca, ce = _atoms_energy(child)
    x = count_exchanged(pa, ca, from_halide, to_halide, by_site=by_site)
    per = exchange_energy(pe, ce, x, reference, from_halide, to_halide)
    return ExchangeEnergy(label, parent_label, x, per * x, per, from_halide, to_halide, reference.kind)


def _items(chain: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    items = list(chain.items()) if isinstance(chain, Mapping) else [(str(k), v) for k, v in chain]
    if len(items) < 2:
        raise InputError("an exchange series needs the pristine model and at least one exchanged model")
    return items


def stepwise_exchange_energies(chain, reference: Reference, from_halide: str = "Cl",
                               to_halide: str = "I", by_site: bool = True) -> list[ExchangeEnergy]:
    """Each model against its predecessor (Table S1/S2 rows: the step that exchanges a layer).

    chain: ordered ``{label: (atoms, energy_eV) or CalcResult}`` (or a list of (label, value)
    pairs), the pristine model first.
    """
    items = _items(chain)
    return [
        exchange_step(lab, items[k - 1][1], val, reference, from_halide, to_halide, items[k - 1][0], by_site)
        for k, (lab, val) in enumerate(items) if k
    ]


def cumulative_exchange_energies(chain, reference: Reference, from_halide: str = "Cl",
                                 to_halide: str = "I", by_site: bool = True) -> list[ExchangeEnergy]:
    """Each model against the first (pristine) one; per_halide uses all halides exchanged so far."""
    items = _items(chain)
    return exchange_energies_against(items[0], items[1:], reference, from_halide, to_halide, by_site)


def exchange_energies_against(parent: tuple[str, Any], children, reference: Reference,
                              from_halide: str = "Cl", to_halide: str = "I",
                              by_site: bool = True) -> list[ExchangeEnergy]:
    """Every child against one parent ``(label, value)`` — e.g. the S3 distributions vs model d."""
    plabel, pval = parent
    kids = list(children.items()) if isinstance(children, Mapping) else list(children)
    return [exchange_step(lab, pval, val, reference, from_halide, to_halide, plabel, by_site) for lab, val in kids]


def relative_to(results: Iterable[ExchangeEnergy], baseline: str, per: Literal["total", "halide"] = "total") -> dict[str, float]:
    """ΔE of each result minus that of ``baseline`` (eV; ``per`` = "total" or "halide")."""
    if per not in ("total", "halide"):
        raise InputError(f"per must be 'total' or 'halide', got {per!r}")
    res = {r.label: (r.total if per == "total" else r.per_halide) for r in results}
    if baseline not in res:
        raise InputError(f"baseline {baseline!r} not among {', '.join(res)}")
    return {k: v - res[baseline] for k, v in res.items()}


def exchange_rows(results: Iterable[ExchangeEnergy], unit: str = "kcal/mol") -> list[dict[str, Any]]:
    """Report rows (list of dicts) with energies in ``unit``."""
    return [r.as_dict(unit) for r in results]


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   digits: int = 2) -> str:
    """A Markdown table of ``rows``; floats rounded to ``digits``."""
    if not rows:
        return ""
    cols = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "–" if not math.isfinite(v) else f"{v:.{digits}f}"
        return "—" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- reactions
def check_element_balance(reactants: Sequence[Atoms], products: Sequence[Atoms]) -> None:
    """Raise InputError naming the elements that differ between the two sides."""
    left = Counter(s for a in reactants for s in a.get_chemical_symbols())
    right = Counter(s for a in products for s in a.get_chemical_symbols())
    if left != right:
        more, less = right - left, left - right
        parts = []
        if more:
            parts.append("products have extra " + ", ".join(f"{n} {e}" for e, n in sorted(more.items())))
        if less:
            parts.append("products lack " + ", ".join(f"{n} {e}" for e, n in sorted(less.items())))
        raise InputError("reaction does not conserve elements: " + "; ".join(parts))


def reaction_energy(reactants: Sequence[Any], products: Sequence[Any]) -> float:
    """ΣE(products) − ΣE(reactants) in eV, after checking element conservation.

    Each entry is ``(atoms, energy_eV)`` or a CalcResult.  (Charges are not checked: pass
    fragments whose total charges balance.)
    """
    r = [_atoms_energy(x) for x in reactants]
    p = [_atoms_energy(x) for x in products]
    check_element_balance([a for a, _ in r], [a for a, _ in p])
    return sum(e for _, e in p) - sum(e for _, e in r)


def zif_reaction_energy(product: Any, perovskite_fragment: Any, zif_fragment: Any) -> float:
    """E(product) − E(CsPbI3 fragment) − E(ZIF fragment), eV, element-conservation checked."""
    return reaction_energy([perovskite_fragment, zif_fragment], [product])


def formula_units(atoms: Atoms, formula: str = "CsPbI3") -> int:
    """Number of ``formula`` units in ``atoms``; InputError unless the composition is an exact multiple."""
    unit = Formula(formula).count()
    have = Counter(atoms.get_chemical_symbols())
    if set(have) != set(unit):
        raise InputError(f"{atoms.get_chemical_formula()} is not made of {formula} units")
    ns = {have[e] / n for e, n in unit.items()}
    if len(ns) != 1 or not float(next(iter(ns))).is_integer():
        raise InputError(f"{atoms.get_chemical_formula()} is not a whole number of {formula} units")
    return int(next(iter(ns)))


def energy_per_formula_unit(entry: Any, formula: str = "CsPbI3") -> float:
    """eV per ``formula`` unit of a bulk cell ``(atoms, energy_eV)`` or CalcResult."""
    atoms, e = _atoms_energy(entry)
    return e / formula_units(atoms, formula)


def phase_energy_difference(phase_a: Any, phase_b: Any, formula: str = "CsPbI3") -> float:
    """E_a − E_b per formula unit (eV/f.u.) of two bulk phases of the same compound."""
    return energy_per_formula_unit(phase_a, formula) - energy_per_formula_unit(phase_b, formula)


def alpha_delta_difference(alpha: Any, delta: Any, formula: str = "CsPbI3") -> float:
    """E(α) − E(δ) per formula unit, eV/f.u. — positive when the δ (non-perovskite) phase is
    more stable.  Multiply by the number of units in a surface fragment to compare with a
    ZIF reaction energy."""
    return phase_energy_difference(alpha, delta, formula)
