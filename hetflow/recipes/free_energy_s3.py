"""Beyond Table S3: the ordered alloy patterns against the whole distribution of random ones.

Table S3 compares four ≈ 20 % Cl→I distributions in model (d)'s remaining CsPbCl3 domain — random,
a CsI layer perpendicular or parallel to the interface, a PbI2 layer perpendicular — and one random
configuration stands for all C(N, x) of them.  The paper concludes that ordered patterns are
preferred.  This recipe asks it against the distribution:

1. the S3 workflow (:func:`~hetflow.recipes.exchange_scan.s3_workflow`: pristine → bottom-first
   N = 1…5 → model (d) → the patterns), with ``samples`` random configurations (seeds seed,
   seed + 1, …; each a uniform draw over all C(N, x) choices of the remaining sites), every one
   relaxed from model (d)'s relaxed geometry — the S3 tasks of the same store are reused;
2. the random sample as an ensemble (:mod:`hetflow.analysis.thermo`): mean, σ, lowest, highest,
   Boltzmann average, and the free energy F = −kT ln(Ω ⟨e^(−βΔE)⟩) with Ω = C(N, x), with a
   bootstrap error, the value from half the sample and the Gaussian (second-cumulant) estimate
   μ − σ²/2kT − kT ln Ω beside it;
3. each ordered pattern against it: the share of random configurations below it, z = (ΔE − μ)/σ,
   ΔE − μ, ΔE − lowest, and G − F with G = ΔE − kT ln g, g the number of symmetry-equivalent copies
   of the pattern in model (d) (the other planes of the same kind are not counted: they are not
   equivalent by symmetry; their number is small beside Ω either way).

ΔE totals against model (d) and the PbX2 reservoir, as Table S3.  Every relaxation must converge
(the gate).  eV inside; kcal/mol in the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from hetflow.analysis.energetics import exchange_energies_against
from hetflow.analysis.published import TABLE_S3
from hetflow.analysis.thermo import K_B, bootstrap_free_energy, ensemble, gaussian_free_energy, log_binomial
from hetflow.analysis.units import kcal
from hetflow.recipes.common import RecipeOptions, run_workflow
from hetflow.recipes.exchange_scan import S3_LABELS, s3_workflow
from hetflow.recipes.gate import Gate
from hetflow.recipes.options import FreeEnergyOptions
from hetflow.recipes.result import ScanResult, finish_gate
from hetflow.recipes.rows import S3EnsembleRow, S3PatternRow
from hetflow.recipes.scan_model import ScanModel, model_line
from hetflow.recipes.scan_tasks import ref_names, reference
from hetflow.structures.symmetry import canonical_subset, site_permutations, symmetry_group

__all__ = ["run_s3_distribution", "pattern_multiplicity", "WORKFLOW"]

#: the workflow's name (its work directory is OUTDIR/work/s3-distribution)
WORKFLOW = "s3-distribution"


def pattern_multiplicity(parent: Atoms, pattern: Atoms, source: str = "Cl") -> int:
    """How many symmetry-equivalent copies of ``pattern``'s exchanged sites model ``parent`` holds:
    the orbit of the exchanged set among the parent's remaining ``source`` sites of the perovskite
    domain under the parent's symmetry operations (:mod:`hetflow.structures.symmetry`)."""
    changed = np.flatnonzero(np.asarray(parent.get_chemical_symbols()) != np.asarray(pattern.get_chemical_symbols()))
    sym = np.asarray(parent.get_chemical_symbols())
    dom = parent.arrays.get("domain")
    pool = np.flatnonzero((sym == source) & ((dom == "perovskite") if dom is not None else True))
    if not np.isin(changed, pool).all():
        return 1
    local = site_permutations(symmetry_group(parent), pool)
    pos = {int(a): i for i, a in enumerate(pool)}
    _rep, size = canonical_subset(sorted(pos[int(a)] for a in changed), local)
    return int(size)


def _task_atoms(wf, name: str) -> Atoms:
    return wf.graph.nodes[name]["task"].atoms


def _ensemble_row(tot: np.ndarray, t: float, lo: float, fo: FreeEnergyOptions) -> dict[str, Any]:
    """The random sample (eV, totals) at T as an ensemble."""
    st = ensemble(tot, t, log_omega=lo)
    mu, sd = float(tot.mean()), float(tot.std(ddof=1)) if len(tot) > 1 else 0.0
    half = np.random.default_rng(fo.seed).permutation(tot)[: max(1, len(tot) // 2)]
    return {"mean": mu, "std": sd, "min": float(tot.min()), "max": float(tot.max()), "boltz": st.e_mean,
            "f": st.free_energy, "f_err": bootstrap_free_energy(tot, t, lo, n_boot=fo.n_boot, seed=fo.seed),
            "f_half": ensemble(half, t, log_omega=lo).free_energy,
            "f_gauss": gaussian_free_energy(mu, sd, t, lo), "ideal": -K_B * t * lo}


def run_s3_distribution(model: ScanModel | None = None, opts: RecipeOptions | None = None,
                        fo: FreeEnergyOptions | None = None) -> ScanResult:
    """Ordered S3 patterns against ``fo.samples`` relaxed random alloys (module doc).  Rows: one
    :class:`S3PatternRow` per ordered pattern at the first temperature; ``extra["ensemble"]``: one
    :class:`S3EnsembleRow` per temperature; ``extra["random_kcal"]``: the sample (totals)."""
    model, opts, fo = model or ScanModel(), opts or RecipeOptions(), fo or FreeEnergyOptions()
    wf, hs, d_name, names, counts = s3_workflow(model, opts, n_seeds=fo.samples)
    wf.name = WORKFLOW
    summary, res = run_workflow(wf, opts)
    refs = ref_names(hs, model, opts)
    needed = [d_name, *names, *refs]
    if not all(n in res for n in needed):
        return ScanResult(WORKFLOW, [], {}, res, summary, complete=False)
    ref, ref_ok = reference(res, hs, model, opts)
    if ref is None:
        return ScanResult(WORKFLOW, [], {}, res, summary, complete=False)
    gate = Gate(res, refs, ref_ok)
    es = dict(zip(names, exchange_energies_against((d_name, res[d_name]), [(n, res[n]) for n in names], ref,
                                                   hs.info["halide"], model.target)))
    rnd = [n for n in names if "-random" in n]
    ordered = [n for n in names if n not in rnd]
    x = int(es[rnd[0]].x)
    n_sites = int(counts.get("n_remaining") or 0)
    lo = log_binomial(n_sites, x)
    rnd_ok = all(gate.ok(n, d_name) for n in rnd)
    bad = sorted({b for n in rnd for b in gate.failed(n, d_name)})
    tot = np.asarray([es[n].total for n in rnd], float)
    ens_rows, ens = [], {}
    for t in fo.temperatures:
        e = _ensemble_row(tot, t, lo, fo) if rnd_ok else {}
        ens[t] = e
        ens_rows.append(S3EnsembleRow(
            temperature_k=float(t), n_relaxed=len(rnd), log10_omega=round(lo / np.log(10), 2),
            de_mean_kcal=kcal(e.get("mean")), de_std_kcal=kcal(e.get("std")), de_min_kcal=kcal(e.get("min")),
            de_max_kcal=kcal(e.get("max")), de_boltzmann_kcal=kcal(e.get("boltz")), f_kcal=kcal(e.get("f")),
            f_err_kcal=kcal(e.get("f_err")), f_half_kcal=kcal(e.get("f_half")), f_gauss_kcal=kcal(e.get("f_gauss")),
            ideal_kcal=kcal(e.get("ideal")),
            status="converged" if rnd_ok else "not converged: " + ", ".join(bad[:4])))
    t0 = fo.temperatures[0]
    e0 = ens[t0]
    d_atoms = _task_atoms(wf, d_name)
    pub = {p.distribution: p for p in TABLE_S3}
    rows, mult = [], {}
    for n in ordered:
        key = next(k for k in S3_LABELS if n.endswith(k))
        label = S3_LABELS[key]
        ok = gate.ok(n, d_name) and rnd_ok
        mult[label] = pattern_multiplicity(d_atoms, _task_atoms(wf, n), hs.info["halide"])
        de = es[n].total
        g = de - K_B * t0 * np.log(mult[label])
        p = pub.get(label)
        rows.append(S3PatternRow(
            distribution=label, x=int(es[n].x), de_total_kcal=kcal(de) if ok else None,
            random_below_pct=round(100.0 * float((tot < de).mean()), 1) if ok else None,
            z=round((de - e0["mean"]) / e0["std"], 2) if ok and e0["std"] > 0 else None,
            de_minus_mean_kcal=kcal(de - e0["mean"]) if ok else None,
            de_minus_min_kcal=kcal(de - e0["min"]) if ok else None,
            g_minus_f_kcal=kcal(g - e0["f"]) if ok else None,
            published_de_minus_random_kcal=p.de_minus_random if p else None,
            status="converged" if ok else "not converged: " + ", ".join(sorted(set(gate.failed(n, d_name)) | set(bad))[:4])))
    known = all(r.de_total_kcal is not None for r in rows)
    checks = {
        "every ordered pattern below every sampled random alloy":
            bool(all(r.de_minus_min_kcal < 0 for r in rows)) if known else None,
        "every ordered pattern below the random ensemble's mean":
            bool(all(r.de_minus_mean_kcal < 0 for r in rows)) if known else None,
        f"every ordered pattern below the random ensemble's free energy at {t0:g} K":
            bool(all(r.g_minus_f_kcal < 0 for r in rows)) if known else None,
    }
    extra = {"model": model_line(hs), "reference": ref.describe(), "ensemble": ens_rows,
             "random_kcal": [kcal(v) for v in tot] if rnd_ok else [], "multiplicity": mult,
             "sites": {"n_sites": n_sites, "x": x, "log_omega": lo},
             "verdicts": [verdict(rows, ens_row, mult) for ens_row in ens_rows],
             "row_converged": [r.de_total_kcal is not None for r in rows]}
    return finish_gate(ScanResult(WORKFLOW, rows, checks, res, summary, extra), needed)


def verdict(rows: list[S3PatternRow], e: S3EnsembleRow, multiplicity: dict[str, int]) -> str:
    """The paper's "ordered is preferred" in words, at the ensemble row's temperature: against
    every sampled random alloy (energy) and against the random ensemble's free energy (G − F with
    G = ΔE − kT ln g, g from ``multiplicity``)."""
    if e.f_kcal is None or any(r.de_total_kcal is None for r in rows):
        return f"{e.temperature_k:g} K: not assessed (a relaxation did not converge)"
    kt = kcal(K_B * e.temperature_k)
    below_all = [r.distribution for r in rows if r.de_minus_min_kcal < 0]
    g_f = {r.distribution: r.de_total_kcal - kt * np.log(multiplicity.get(r.distribution, 1)) - e.f_kcal for r in rows}
    words = (f"{e.temperature_k:g} K: the {e.n_relaxed} random alloys spread {e.de_min_kcal:.1f} … "
             f"{e.de_max_kcal:.1f} kcal/mol (σ {e.de_std_kcal:.1f}); ")
    words += (f"below every one of them: {', '.join(below_all)}; " if below_all else
              "no ordered pattern lies below every sampled random alloy; ")
    words += "; ".join(f"{r.distribution} z = {r.z:+.1f}" for r in rows if r.z is not None)
    words += (f". The random ensemble's free energy F = {e.f_kcal:.1f} ± {e.f_err_kcal:.1f} kcal/mol "
              f"(Gaussian estimate {e.f_gauss_kcal:.1f}; −kT ln Ω = {e.ideal_kcal:.1f} of it): G − F = "
              + ", ".join(f"{k} {v:+.1f}" for k, v in g_f.items())
              + f" kcal/mol — ordered {'is' if all(v < 0 for v in g_f.values()) else 'is not always'} preferred "
              f"in free energy at {e.temperature_k:g} K")
    return words
