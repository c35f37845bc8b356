"""Exchange scans of Tables S1–S3 as workflows: build → calculate → analyse.

One workflow per table.  Every calculation is a task of the graph (content-keyed, so reruns
reuse the store):

* ``pristine`` — relaxation of the labelled heterostructure;
* ``nc-reference`` — the standalone perovskite NC of the same size, relaxed with the same
  method (the strain reference of SCIENCE.md);
* ``ref-PbX2-…`` — the PbX2 reservoir references (molecules or bulk);
* one task per exchanged configuration.  **Warm starts**: a full run relaxes each
  configuration starting from its parent's relaxed geometry (N from N−1, S2 step k from
  k−1, S3 patterns from model d); ``quick``
  runs a short relaxation of every configuration from the relaxed pristine geometry instead.

The analysis (pure functions of :mod:`hetflow.analysis`) turns the stored results into the
tables; energies are eV inside and kcal/mol in the reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from hetflow.errors import WorkflowError
from hetflow.structures.exchange import alloy_patterns, interfacial_series, layer_series, model_d
from hetflow.structures.interface import build_heterostructure
from hetflow.structures.nanocrystal import cut_nanocrystal
from hetflow.workflows.graph import Workflow
from hetflow.workflows.recipes.common import (
    RecipeOptions,
    add_references,
    make_spec,
    reference_from_results,
    run_workflow,
)

#: model sizes (perovskite octahedra, partner b/2 blocks) per table and mode
MODELS = {
    ("s1", True): ((2, 2, 3), 1),
    ("s1", False): ((3, 3, 3), 2),
    ("s2", True): ((2, 2, 3), 1),
    ("s2", False): ((3, 3, 3), 2),
    ("s3", True): ((2, 2, 4), 1),
    ("s3", False): ((3, 3, 5), 2),
}


@dataclass
class ScanModel:
    """The system a scan works on: phases, halide exchange and model size."""

    perovskite: str = "CsPbCl3"
    partner: str = "Pb4S3Cl2"
    target: str = "I"
    size: tuple[int, int, int] | None = None
    partner_cells: int | None = None

    def build(self, table: str, quick: bool) -> Atoms:
        size, cells = MODELS[(table, quick)]
        hs = build_heterostructure(self.perovskite, self.partner, size=self.size or size,
                                   partner_cells=self.partner_cells or cells)
        hs.info["name"] = "pristine"
        return hs

    def reference_nc(self, hs: Atoms) -> Atoms:
        return cut_nanocrystal(self.perovskite, tuple(hs.info["size"]))


@dataclass
class ScanResult:
    """What a scan produced: report rows, qualitative checks, stored results by task."""

    table: str
    rows: list[dict[str, Any]]
    checks: dict[str, bool | None]
    results: dict[str, Any] = field(default_factory=dict)
    summary: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    complete: bool = True


# --------------------------------------------------------------------------- graph building


def _base_tasks(wf: Workflow, hs: Atoms, model: ScanModel, opts: RecipeOptions, want_mo: bool = False) -> dict[str, str]:
    """pristine relaxation, standalone-NC reference relaxation and PbX2 references."""
    relax = make_spec(opts, "relax")
    names = {"pristine": wf.add_calc("pristine", hs, relax),
             "nc": wf.add_calc("nc-reference", model.reference_nc(hs), relax)}
    if want_mo:
        names["pristine-mo"] = wf.add_calc("pristine-mo", None, make_spec(opts, want_mo=True), start_from="pristine")
    refs = add_references(wf, opts, (hs.info["halide"], model.target))
    names.update({f"ref-{h}": n for h, n in refs.items()})
    return names


#: optimiser steps of each exchanged configuration in quick mode
QUICK_CONFIG_STEPS = 25


def _config_task(wf: Workflow, cfg: Atoms, opts: RecipeOptions, parent_task: str) -> str:
    """A configuration: relaxation warm-started from its parent's relaxed geometry (full), or
    (quick) a short relaxation — QUICK_CONFIG_STEPS steps, or ``opts.max_steps`` if smaller —
    from the relaxed pristine geometry, so all configurations run in parallel."""
    name = cfg.info["name"]
    if opts.quick:
        steps = min(QUICK_CONFIG_STEPS, opts.relax_steps)
        return wf.add_calc(name, cfg, make_spec(opts, "relax", max_steps=steps), start_from="pristine")
    return wf.add_calc(name, cfg, make_spec(opts, "relax"), start_from=parent_task)


def _chain(wf: Workflow, configs: list[Atoms], opts: RecipeOptions, first_parent: str = "pristine") -> list[str]:
    names = []
    parent = first_parent
    for cfg in configs:
        parent = _config_task(wf, cfg, opts, parent)
        names.append(parent)
    return names


def _refs(results, hs: Atoms, model: ScanModel, opts: RecipeOptions):
    return reference_from_results(results, {h: f"ref-Pb{h}2-{opts.reference}" for h in (hs.info["halide"], model.target)},
                                  opts)


def _done(summary, results: dict, needed: list[str]) -> bool:
    return all(n in results for n in needed)


def unconverged(results: dict, names) -> list[str]:
    """Tasks among ``names`` whose stored calculation did not converge (SCF or geometry)."""
    return [n for n in names if n in results and not getattr(results[n], "converged", True)]


def _finish(r: "ScanResult", names, quick: bool) -> "ScanResult":
    """Record non-converged calculations in the result (and, for full runs, as a failed check)."""
    bad = unconverged(r.results, names)
    r.extra["unconverged"] = bad
    if not quick:
        r.checks["all relaxations converged"] = not bad
    return r


# --------------------------------------------------------------------------- S1


def s1_workflow(model: ScanModel, opts: RecipeOptions, name: str = "s1") -> tuple[Workflow, Atoms, dict[str, list[str]]]:
    hs = model.build("s1", opts.quick)
    wf = Workflow(name)
    _base_tasks(wf, hs, model, opts, want_mo=True)
    series = {}
    for start in ("interface", "bottom"):
        series[start] = _chain(wf, layer_series(hs, start, 5, model.target), opts)
    return wf, hs, series


def run_s1(model: ScanModel | None = None, opts: RecipeOptions | None = None, name: str = "s1") -> ScanResult:
    """Table S1: ΔE per exchanged halide for N = 1…5 layers from the interface and from the bottom.

    ``name`` names the workflow (and its work directory); the screen uses one per pair."""
    from hetflow.analysis.energetics import stepwise_exchange_energies
    from hetflow.analysis.published import TABLE_S1
    from hetflow.analysis.units import from_ev

    model, opts = model or ScanModel(), opts or RecipeOptions()
    wf, hs, series = s1_workflow(model, opts, name)
    summary, res = run_workflow(wf, opts)
    needed = ["pristine", *series["interface"], *series["bottom"], *[f"ref-Pb{h}2-{opts.reference}" for h in (hs.info["halide"], model.target)]]
    if not _done(summary, res, needed):
        return ScanResult("s1", [], {}, res, summary, complete=False)
    ref = _refs(res, hs, model, opts)
    src, tgt = hs.info["halide"], model.target
    de = {}
    for start, names in series.items():
        chain = [("pristine", res["pristine"])] + [(n, res[n]) for n in names]
        de[start] = [from_ev(e.per_halide, "kcal/mol") for e in stepwise_exchange_energies(chain, ref, src, tgt)]
    rows = []
    for n in range(5):
        pub = TABLE_S1[n]
        rows.append({
            "N": n + 1,
            "ΔE interface (kcal/mol)": de["interface"][n],
            "ΔE bottom (kcal/mol)": de["bottom"][n],
            "interface − bottom": de["interface"][n] - de["bottom"][n],
            "published interface": pub.from_interface,
            "published bottom": pub.from_bottom,
            "published interface − bottom": pub.interface_minus_bottom,
        })
    checks = {"bottom-first preferred at N = 1": bool(de["bottom"][0] < de["interface"][0])}
    extra = {"series": de, "reference": ref.describe(), "model": _model_line(hs), "hs": hs}
    if "nc-reference" in res:
        from hetflow.analysis.strain import interfacial_strain

        nc = res["nc-reference"].atoms
        extra["strain"] = {n: interfacial_strain(res[t].atoms, nc) for n, t in
                           (("pristine", "pristine"), ("interface N5", series["interface"][-1]),
                            ("bottom N5", series["bottom"][-1]))}
    if "pristine-mo" in res and res["pristine-mo"].mo is not None:
        extra["pristine_mo"] = res["pristine-mo"]
    return _finish(ScanResult("s1", rows, checks, res, summary, extra), needed + ["nc-reference"], opts.quick)


# --------------------------------------------------------------------------- S2


def s2_workflow(model: ScanModel, opts: RecipeOptions) -> tuple[Workflow, Atoms, list[str], list[float]]:
    """The S2 workflow; also returns the I fraction actually reached at each (e) step (the
    pool of interfacial chalcohalide halides is small, so 20 % steps are rounded)."""
    hs = model.build("s2", opts.quick)
    wf = Workflow("s2")
    _base_tasks(wf, hs, model, opts, want_mo=True)  # pristine-mo: first panel of the level diagram
    configs = interfacial_series(hs, seed=opts.seed, target=model.target)
    if opts.quick:
        names = _chain(wf, configs, opts)
    else:
        bottom = _chain(wf, layer_series(hs, "bottom", 5, model.target), opts)
        names = _chain(wf, configs, opts, first_parent=bottom[-1])
    wf.add_calc(f"{names[0]}-mo", None, make_spec(opts, want_mo=True), start_from=names[0])  # model (d)
    names.append(wf.add_calc(f"{names[-1]}-mo", None, make_spec(opts, want_mo=True), start_from=names[-1]))
    return wf, hs, names, [float(c.info["fraction_actual"]) for c in configs[1:]]


def run_s2(model: ScanModel | None = None, opts: RecipeOptions | None = None) -> ScanResult:
    """Table S2: Cl→I in the two interfacial chalcohalide layers from model (d), with strain."""
    from hetflow.analysis.energetics import stepwise_exchange_energies
    from hetflow.analysis.published import TABLE_S2
    from hetflow.analysis.strain import interfacial_strain
    from hetflow.analysis.units import from_ev

    model, opts = model or ScanModel(), opts or RecipeOptions()
    wf, hs, names, fractions = s2_workflow(model, opts)
    summary, res = run_workflow(wf, opts)
    chain_names = names[:-1]
    needed = ["pristine", "nc-reference", *chain_names, *[f"ref-Pb{h}2-{opts.reference}" for h in (hs.info["halide"], model.target)]]
    if not _done(summary, res, needed):
        return ScanResult("s2", [], {}, res, summary, complete=False)
    ref = _refs(res, hs, model, opts)
    steps = stepwise_exchange_energies([(n, res[n]) for n in chain_names], ref, hs.info["halide"], model.target)
    nc = res["nc-reference"].atoms
    strain = [interfacial_strain(res[n].atoms, nc) for n in chain_names]
    first = from_ev(steps[0].per_halide, "kcal/mol")
    rows = []
    prev_pct = 0
    for k, e in enumerate(steps):
        pct = round(100 * fractions[k], 1)  # I fraction actually reached (rounded site counts)
        pub = TABLE_S2[k] if k < len(TABLE_S2) else None
        val = from_ev(e.per_halide, "kcal/mol")
        rows.append({
            "step (I/Cl %)": f"{prev_pct:g}→{pct:g}",
            "published step": f"{pub.step[0]}→{pub.step[1]}" if pub else None,
            "x": e.x,
            "ΔE (kcal/mol)": val,
            "ΔE − ΔE(first)": val - first,
            "strain before (%)": strain[k],
            "strain after (%)": strain[k + 1],
            "published ΔE": pub.de if pub else None,
            "published strain": f"{pub.strain_before:.2f} → {pub.strain_after:.2f}" if pub else None,
        })
        prev_pct = pct
    energies = [r["ΔE (kcal/mol)"] for r in rows]
    checks = {
        "first interfacial step most favourable": bool(int(np.argmin(energies)) == 0),
        "first step relieves interfacial strain": (bool(strain[1] < strain[0]) if not opts.quick else None),
    }
    extra = {"strain": strain, "reference": ref.describe(), "model": _model_line(hs),
             "pristine_strain": interfacial_strain(res["pristine"].atoms, nc)}
    mo_name = names[-1]
    if mo_name in res and res[mo_name].mo is not None:
        extra["exchanged_mo"] = res[mo_name]
    # Figure 6: pristine, partially (model d) and fully exchanged side by side (report.plot_result)
    extra["level_models"] = [(label, res[n], res.get(parent)) for label, n, parent in
                             (("pristine", "pristine-mo", "pristine"),
                              ("partially exchanged (model d)", f"{chain_names[0]}-mo", chain_names[0]),
                              ("fully exchanged", mo_name, chain_names[-1]))
                             if n in res and res[n].mo is not None]
    return _finish(ScanResult("s2", rows, checks, res, summary, extra), needed, opts.quick)


# --------------------------------------------------------------------------- S3


def s3_workflow(model: ScanModel, opts: RecipeOptions) -> tuple[Workflow, Atoms, str, list[str], dict]:
    hs = model.build("s3", opts.quick)
    wf = Workflow("s3")
    _base_tasks(wf, hs, model, opts)
    patterns = alloy_patterns(hs, 0.2, seed=opts.seed, target=model.target)
    d_cfg = model_d(hs, target=model.target)
    if opts.quick:
        d_name = _config_task(wf, d_cfg, opts, "pristine")
    else:
        bottom = _chain(wf, layer_series(hs, "bottom", 5, model.target), opts)
        d_name = _config_task(wf, d_cfg, opts, bottom[-1])
    names = [_config_task(wf, p, opts, d_name) for p in patterns]
    counts = {k: patterns[0].info[k] for k in ("n_target", "n_requested", "n_remaining", "count_note")
              if k in patterns[0].info}
    return wf, hs, d_name, names, counts


def run_s3(model: ScanModel | None = None, opts: RecipeOptions | None = None) -> ScanResult:
    """Table S3: ≈20 % Cl→I in the remaining CsPbCl3 domain in four distributions, vs model (d)."""
    from hetflow.analysis.energetics import exchange_energies_against
    from hetflow.analysis.published import TABLE_S3
    from hetflow.analysis.units import from_ev

    model, opts = model or ScanModel(), opts or RecipeOptions()
    wf, hs, d_name, names, counts = s3_workflow(model, opts)
    summary, res = run_workflow(wf, opts)
    needed = [d_name, *names, *[f"ref-Pb{h}2-{opts.reference}" for h in (hs.info["halide"], model.target)]]
    if not _done(summary, res, needed):
        return ScanResult("s3", [], {}, res, summary, complete=False)
    ref = _refs(res, hs, model, opts)
    es = exchange_energies_against((d_name, res[d_name]), [(n, res[n]) for n in names], ref,
                                   hs.info["halide"], model.target)
    random_total = from_ev(es[0].total, "kcal/mol")
    labels = {"random": "random", "csx_perp": "CsI layer perpendicular", "csx_par": "CsI layer parallel",
              "pbx2_perp": "PbI2 layer perpendicular"}
    pub = {r.distribution: r for r in TABLE_S3}
    rows = []
    for n, e in zip(names, es):
        key = n.split("-")[-1] if "-" in n else n
        pattern = next((p for p in labels if n.endswith(p)), key)
        total = from_ev(e.total, "kcal/mol")
        p = pub.get(labels.get(pattern, ""))
        rows.append({
            "distribution": labels.get(pattern, pattern),
            "x": e.x,
            "ΔE total (kcal/mol)": total,
            "ΔE per halide (kcal/mol)": from_ev(e.per_halide, "kcal/mol"),
            "ΔE − ΔE(random)": total - random_total,
            "published ΔE": p.de if p else None,
            "published ΔE − ΔE(random)": p.de_minus_random if p else None,
        })
    ordered = [r["ΔE − ΔE(random)"] for r in rows[1:]]
    checks = {"every ordered distribution below random": bool(all(v < 0 for v in ordered))}
    extra = {"reference": ref.describe(), "model": _model_line(hs),
             "counts_equal": len({r["x"] for r in rows}) == 1, "counts": counts}
    return _finish(ScanResult("s3", rows, checks, res, summary, extra), needed, opts.quick)


def _model_line(hs: Atoms) -> str:
    return (f"{hs.info['perovskite_phase']}/{hs.info['partner_phase']} NC heterostructure, size "
            f"{tuple(hs.info['size'])}, {hs.info['partner_cells']} partner b/2 blocks, {len(hs)} atoms "
            f"({hs.get_chemical_formula(mode='hill')})")


def require_complete(r: ScanResult) -> ScanResult:
    if not r.complete:
        raise WorkflowError(f"{r.table}: not all calculations finished ({r.summary}); see `hetflow status`")
    return r
