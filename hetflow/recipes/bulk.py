"""Converged periodic (Γ-point) energies of bulk phases: α, γ, δ CsPbI3 and bulk PbCl2/PbI2.

Per phase (one :class:`BulkConvergence` stage, run by :func:`~hetflow.recipes.staged.run_staged`):

1. **relax** ions and cell (ASE ``FrechetCellFilter``) in the cheapest supercell whose
   periodic images are at least ``relax_length`` Å apart
   (:func:`~hetflow.structures.supercells.supercell_series`); α starts from a seeded
   symmetry-lowering perturbation (random displacements and cell strain) so that it can
   leave the untilted cubic saddle; "alpha-cubic" keeps Pm-3m (isotropic cell scaling only);
2. **grow**: single points of the relaxed structure tiled into ever larger supercells (image
   distance + ``step`` Å each time) until the energy per formula unit changes by less than
   ``tol_kj`` kJ/mol (1 by default) — tblite samples Γ only, so this is the k-point
   convergence — or the next supercell would exceed ``max_atoms``;
3. **analyse**: lattice parameters in the registry setting, space group, octahedral tilts
   (α: does it stay cubic?), the largest residual force of the relaxed geometry in the
   largest supercell (how well the small relaxation cell represents the converged one).

:func:`converged_bulk_reference` gives the bulk PbX2 reference (eV per PbX2 unit) of the
exchange scans' ``--reference bulk`` from the same machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from hetflow.analysis.bulk import Convergence, ConvergencePoint, convergence, lattice_summary, octahedral_tilts
from hetflow.analysis.energetics import Reference, formula_units, markdown_table
from hetflow.errors import InputError
from hetflow.recipes.common import RecipeOptions, make_spec
from hetflow.recipes.result import ScanResult
from hetflow.recipes.rows import BulkRow
from hetflow.recipes.staged import TaskTuple, run_staged
from hetflow.structures.phases import get_phase
from hetflow.structures.supercells import (
    SupercellChoice,
    build_supercell,
    min_image_distance,
    perturb,
    supercell_series,
)


@dataclass(frozen=True)
class BulkPhase:
    """A bulk phase of the study: registry name, formula unit, how to start and relax it."""

    key: str
    registry: str
    formula: str
    perturb: bool = False
    cell_filter: str = "full"
    perovskite: bool = False
    #: supercell shapes of the relaxation cell (None: all); α uses fcc·n, which folds R (the
    #: gap of cubic CsPbI3) and, from n = 2, the M and X points of every octahedral tilt pattern
    relax_shapes: tuple[str, ...] | None = None


PHASES: dict[str, BulkPhase] = {
    "alpha": BulkPhase("alpha", "CsPbI3-alpha", "CsPbI3", perturb=True, perovskite=True, relax_shapes=("fcc",)),
    "alpha-cubic": BulkPhase("alpha-cubic", "CsPbI3-alpha", "CsPbI3", cell_filter="hydrostatic", perovskite=True,
                             relax_shapes=("fcc",)),
    "gamma": BulkPhase("gamma", "CsPbI3-gamma", "CsPbI3", perovskite=True),
    "delta": BulkPhase("delta", "CsPbI3-delta", "CsPbI3"),
    "PbCl2": BulkPhase("PbCl2", "PbCl2", "PbCl2"),
    "PbI2": BulkPhase("PbI2", "PbI2", "PbI2"),
}


@dataclass(frozen=True)
class BulkSettings:
    """Convergence settings (Å, kJ/mol per formula unit).

    relax_length: image distance of the relaxation supercell.  step: growth of the image
    distance between two supercells of the series.  max_atoms: largest supercell.
    perturb_rms / perturb_strain: seeded symmetry-lowering start of α (Å per component,
    strain components).  fmax: force threshold of the bulk relaxations (eV/Å; with the cell
    filter it also bounds the stress × volume per atom).  max_steps: safety net on the optimiser
    steps (quick mode too): reaching it makes the relaxation "not converged", it is not a budget."""

    tol_kj: float = 1.0
    relax_length: float = 12.0
    step: float = 4.0
    max_atoms: int = 700
    perturb_rms: float = 0.1
    perturb_strain: float = 0.01
    fmax: float = 0.03
    max_steps: int = 1000
    optimizer: str = "BFGS"

    def __post_init__(self) -> None:
        if self.tol_kj <= 0 or self.relax_length <= 0 or self.step <= 0 or self.max_atoms < 1 or self.fmax <= 0:
            raise InputError("bulk settings: tol_kj, relax_length, step, fmax must be > 0 and max_atoms ≥ 1")

    @classmethod
    def quick(cls) -> "BulkSettings":
        return cls(relax_length=9.0, step=5.0, max_atoms=250, fmax=0.05)


def _formula_units(atoms: Atoms, formula: str) -> int:
    return formula_units(atoms, formula)


@dataclass
class BulkResult:
    """Converged bulk energy of one phase (eV per formula unit) with its evidence."""

    phase: BulkPhase
    relax_supercell: str
    relaxed: Any
    convergence: Convergence
    lattice: dict[str, Any]
    tilts: dict[str, Any] | None
    residual_fmax: float | None
    relax_converged: bool
    notes: list[str] = field(default_factory=list)

    @property
    def energy_per_fu(self) -> float:
        return self.convergence.value

    @property
    def converged(self) -> bool:
        return self.convergence.converged and self.relax_converged

    def stays_cubic(self, tol_a: float = 0.01, tol_angle: float = 0.2, tol_tilt: float = 1.0) -> bool | None:
        """Perovskites: pseudo-cubic a = b = c (± tol_a Å), 90° (± tol_angle) and no tilt."""
        if not self.phase.perovskite or self.tilts is None or self.tilts.get("max_tilt") is None:
            return None
        L = self.lattice
        if self.phase.registry != "CsPbI3-alpha":
            return None
        return bool(max(L["a"], L["b"], L["c"]) - min(L["a"], L["b"], L["c"]) < tol_a
                    and all(abs(L[x] - 90.0) < tol_angle for x in ("alpha", "beta", "gamma"))
                    and self.tilts["max_tilt"] < tol_tilt)


class BulkConvergence:
    """Stage: relax one phase, then grow its supercell until the energy converges."""

    def __init__(self, phase: BulkPhase, opts: RecipeOptions, settings: BulkSettings | None = None):
        self.phase = phase
        self.opts = opts
        self.s = settings or (BulkSettings.quick() if opts.quick else BulkSettings())
        prim = get_phase(phase.registry)
        series = supercell_series(prim, self.s.relax_length, self.s.step, max(self.s.max_atoms, len(prim)),
                                  shapes=phase.relax_shapes)
        if not series:
            shapes = "/".join(phase.relax_shapes) if phase.relax_shapes else "any"
            raise InputError(f"{phase.key}: no {shapes} supercell of {prim.get_chemical_formula()} reaches an image "
                             f"distance of {self.s.relax_length} Å within {self.s.max_atoms} atoms; raise max_atoms "
                             f"or lower relax_length")
        self.relax_choice: SupercellChoice = series[0]
        start = build_supercell(prim, self.relax_choice)
        if phase.perturb:
            start = perturb(start, self.s.perturb_rms, self.s.perturb_strain, seed=opts.seed)
        self.start = start
        self.relax_name = f"bulk-{phase.key}-relax"
        self.relax_spec = make_spec(opts, "relax", periodic=True, max_steps=self.s.max_steps).replace(
            fmax=self.s.fmax, optimizer=self.s.optimizer).with_settings(cell_filter=phase.cell_filter)
        self.sp_spec = make_spec(opts, "single_point", periodic=True)
        self._series: list[SupercellChoice] | None = None

    def series(self, relaxed: Atoms) -> list[SupercellChoice]:
        if self._series is None:
            L0 = min_image_distance(relaxed.cell)
            self._series = supercell_series(relaxed, L0 - 1e-6, self.s.step, self.s.max_atoms)
        return self._series

    def _walk(self, results: dict[str, Any]) -> tuple[list[TaskTuple], list[ConvergencePoint], list[str]]:
        tasks: list[TaskTuple] = [(self.relax_name, self.start, self.relax_spec)]
        if self.relax_name not in results:
            return tasks, [], []
        rel = results[self.relax_name]
        nfu = _formula_units(rel.atoms, self.phase.formula)

        pts = [ConvergencePoint(self.relax_choice.label, len(rel.atoms), min_image_distance(rel.atoms.cell),
                                rel.energy / nfu)]
        names = [self.relax_name]
        for ch in self.series(rel.atoms)[1:]:
            name = f"bulk-{self.phase.key}-sp-{len(rel.atoms) * ch.n_cells}"
            sc = build_supercell(rel.atoms, ch)
            tasks.append((name, sc, self.sp_spec))
            if name not in results:
                break
            r = results[name]
            pts.append(ConvergencePoint(f"{self.relax_choice.label} ⊗ {ch.label}", len(sc), ch.image_distance,
                                        r.energy / _formula_units(r.atoms, self.phase.formula)))
            names.append(name)
            if convergence(pts, self.s.tol_kj).converged:
                break
        return tasks, pts, names

    def tasks(self, results: dict[str, Any]) -> list[TaskTuple]:
        return self._walk(results)[0]

    def result(self, results: dict[str, Any]) -> BulkResult | None:
        """The phase's result once every task it asked for has finished (else None)."""
        tasks, pts, names = self._walk(results)
        if any(t[0] not in results for t in tasks) or not pts:
            return None
        rel = results[self.relax_name]
        conv = convergence(pts, self.s.tol_kj)
        nfu = _formula_units(rel.atoms, self.phase.formula)
        lat = lattice_summary(rel.atoms, matrix=self.relax_choice.M, formula_units=nfu)
        tilts = octahedral_tilts(rel.atoms) if self.phase.perovskite else None
        last = results[names[-1]]
        resid = None if last.forces is None else float(np.linalg.norm(np.asarray(last.forces), axis=1).max())
        notes = []
        if not conv.converged:
            nxt = [c for c in self.series(rel.atoms) if c.n_cells * len(rel.atoms) > pts[-1].n_atoms]
            last = "no second supercell" if conv.last_delta_kj is None else f"last change {conv.last_delta_kj:.2f} kJ/mol"
            notes.append(f"not converged to {self.s.tol_kj:g} kJ/mol ({last}): "
                         + ("the next supercell would exceed max_atoms" if not nxt else "series stopped"))
        if not rel.converged:
            notes.append("the ion+cell relaxation stopped at its step cap")
        return BulkResult(self.phase, self.relax_choice.label, rel, conv, lat, tilts, resid, bool(rel.converged), notes)


def bulk_stages(keys, opts: RecipeOptions, settings: BulkSettings | None = None) -> dict[str, BulkConvergence]:
    out = {}
    for k in keys:
        if k not in PHASES:
            raise InputError(f"unknown bulk phase {k!r}; choose from {', '.join(PHASES)}")
        out[k] = BulkConvergence(PHASES[k], opts, settings)
    return out


def run_bulk(keys=("alpha", "alpha-cubic", "gamma", "delta", "PbCl2", "PbI2"), opts: RecipeOptions | None = None,
             settings: BulkSettings | None = None) -> tuple[dict[str, BulkResult | None], Any, bool]:
    """Converge the bulk phases ``keys``; returns ({key: BulkResult or None}, summary, complete)."""
    opts = opts or RecipeOptions()
    stages = bulk_stages(keys, opts, settings)
    summary, res, complete = run_staged("bulk", list(stages.values()), opts)
    return {k: st.result(res) for k, st in stages.items()}, summary, complete


def converged_bulk_reference(opts: RecipeOptions, halides=("Cl", "I"), settings: BulkSettings | None = None):
    """The bulk PbX2 :class:`~hetflow.analysis.energetics.Reference` (eV per PbX2 unit) from
    relaxed (ions + cell), Γ-point-converged supercells — for ``--reference bulk``.

    Returns (Reference or None while calculations are still queued, {halide: BulkResult})."""
    keys = []
    for h in halides:
        if f"Pb{h}2" not in PHASES:
            raise InputError(f"no bulk Pb{h}2 phase registered; use reference='molecule'")
        keys.append(f"Pb{h}2")
    out, _, complete = run_bulk(tuple(keys), opts, settings)
    if not complete or any(v is None for v in out.values()):
        return None, out
    energies = {h: out[f"Pb{h}2"].energy_per_fu for h in halides}
    note = "; ".join(f"Pb{h}2 {out[f'Pb{h}2'].convergence.points[-1].label} "
                     f"({'converged' if out[f'Pb{h}2'].converged else 'NOT converged'} to "
                     f"{out[f'Pb{h}2'].convergence.tol_kj:g} kJ/mol per f.u.)" for h in halides)
    return Reference("bulk", energies, note=f"{opts.method}, ions+cell relaxed, Γ-point supercells: {note}"), out


def bulk_rows(results: dict[str, BulkResult | None]) -> list[BulkRow]:
    """One summary row per phase (energies eV per formula unit)."""
    rows = []
    for k, r in results.items():
        if r is None:
            rows.append(BulkRow(phase=k, status="not finished"))
            continue
        L = r.lattice
        rows.append(BulkRow(
            phase=k, formula_unit=r.phase.formula, relaxed_in=f"{r.relax_supercell} ({len(r.relaxed.atoms)} atoms)",
            largest_supercell_atoms=r.convergence.points[-1].n_atoms, e_per_fu_ev=r.energy_per_fu,
            last_delta_kj=r.convergence.last_delta_kj, converged="yes" if r.converged else "**no**",
            a=L["a"], b=L["b"], c=L["c"], angles=f"{L['alpha']:.2f}/{L['beta']:.2f}/{L['gamma']:.2f}",
            spacegroup=L["spacegroup"].get("0.1"), max_tilt_deg=None if not r.tilts else r.tilts.get("max_tilt"),
            residual_fmax=r.residual_fmax, status="done"))
    return rows


def convergence_markdown(results: dict[str, BulkResult | None]) -> str:
    """The convergence tables of every phase (Markdown)."""
    parts = []
    for k, r in results.items():
        if r is None:
            continue
        parts.append(f"### {k} ({r.phase.registry})\n\n" + markdown_table(r.convergence.rows(), digits=4)
                     + ("\n\n" + "\n".join(f"- {n}" for n in r.notes) if r.notes else ""))
    return "\n\n".join(parts)


def bulk_mode(settings: BulkSettings, method: str) -> str:
    return (f"{method} with periodic boundaries at Γ; ions and cell relaxed (FrechetCellFilter, fmax "
            f"{settings.fmax} eV/Å) in the cheapest supercell with images ≥ {settings.relax_length} Å apart, then "
            f"single points of the relaxed cell in supercells growing by {settings.step} Å of image distance until "
            f"E per f.u. changes by < {settings.tol_kj} kJ/mol (at most {settings.max_atoms} atoms)")


def run_bulk_table(opts: RecipeOptions, keys=("alpha", "alpha-cubic", "gamma", "delta", "PbCl2", "PbI2"),
                   settings: BulkSettings | None = None):
    """``hetflow reproduce bulk``: the bulk phases as a report (:class:`ScanResult`)."""
    settings = settings or (BulkSettings.quick() if opts.quick else BulkSettings())
    res, summary, complete = run_bulk(keys, opts, settings)
    if not complete:
        return ScanResult("bulk", [], {}, {}, summary, {}, complete=False)
    checks = {f"{k} converged to {settings.tol_kj:g} kJ/mol per f.u.": (r is not None and r.converged)
              for k, r in res.items()}
    extra = {"model": "registry phases (hetflow.structures.phases)", "reference": "energies per formula unit",
             "mode": bulk_mode(settings, opts.method), "bulk": res,
             "markdown_sections": ["## Convergence tables\n\n" + convergence_markdown(res)]}
    return ScanResult("bulk", bulk_rows(res), checks, {}, summary, extra)
