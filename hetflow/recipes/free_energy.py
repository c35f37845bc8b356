"""Beyond the paper: the configurational free energy of partial Cl→I exchange (Table S2's sites).

Table S2 gives one configuration per composition of the two interfacial chalcohalide layers; the
paper notes that "entropic contributions, which are not included in our calculations, may play a
critical role in stabilizing intermediate I/Cl ratios at around 40–60 %".  This recipe answers it
at the chosen level:

1. the S2 chain (pristine → bottom-first N = 1…5 → model (d)), as :func:`run_s2` builds it (same
   tasks, so an S2 run in the same store is reused);
2. for each composition n of the N interfacial halide sites (the S2 steps: 20 … 100 %), the
   configurations: **every symmetry-distinct one** with its multiplicity when there are at most
   ``exact_max`` orbits, else a **uniform random sample** of ``samples`` draws over all C(N, n)
   configurations (each draw mapped to its symmetry-distinct representative, so a configuration
   drawn twice is relaxed once and counted twice);
3. each configuration relaxed from model (d)'s relaxed geometry (a task of the workflow engine:
   cached, resumable, any executor);
4. per composition and temperature (:mod:`hetflow.analysis.thermo`): the lowest and the
   Boltzmann-averaged exchange energy per exchanged halide, the exchange free energy
   ΔF = −kT ln Σ e^(−βΔE) (ΔE against model (d) and the PbX2 reservoir, as in Table S2), the ideal
   mixing term −kT ln C(N, n) beside it, a bootstrap error and the half-sample value (does the
   sample pin ΔF?); and over compositions whether ΔF(x) is convex, where its minimum lies, and
   whether an intermediate composition lies below the line between model (d) and the fully
   exchanged layers (stabilised against separating into the two).

Every relaxation must converge (the gate): a composition with an unconverged configuration shows
no number.  Energies eV inside, kcal/mol in the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from hetflow.analysis.energetics import exchange_energies_against
from hetflow.analysis.thermo import K_B, bootstrap_free_energy, ensemble, log_binomial, mixing_curve
from hetflow.analysis.units import from_ev, kcal as _kcal
from hetflow.recipes.common import RecipeOptions, run_workflow
from hetflow.recipes.gate import Gate
from hetflow.recipes.options import FreeEnergyOptions
from hetflow.recipes.result import ScanResult, finish_gate
from hetflow.recipes.rows import FreeEnergyRow
from hetflow.recipes.scan_model import ScanModel, model_line
from hetflow.recipes.scan_tasks import base_tasks, chain, config_task, ref_names, reference
from hetflow.structures.exchange import S2_FRACTIONS, exchange_sites, halide_sites, layer_series, model_d, \
    partner_halide_layers
from hetflow.structures.symmetry import canonical_subset, distinct_subsets, site_permutations, symmetry_group
from hetflow.workflows.graph import Workflow

__all__ = ["FreeEnergyOptions", "FreeEnergyRow", "Composition", "sample_compositions", "run_free_energy"]


@dataclass(frozen=True)
class Composition:
    """One composition's configurations: n of the pool's N sites exchanged.

    configs: one exchanged structure per distinct configuration to relax.  weights: multiplicity
    (exact) or number of draws (sampled) of each.  exact: every distinct configuration (True) or a
    uniform sample (False).  log_omega: ln C(N, n)."""

    n: int
    n_sites: int
    configs: list[Atoms]
    weights: list[int]
    exact: bool
    log_omega: float
    group_order: int


def sample_compositions(d: Atoms, fo: FreeEnergyOptions, target: str = "I", source: str | None = None,
                        n_partner_layers: int = 2) -> list[Composition]:
    """The configurations of each composition of model (d)'s interfacial chalcohalide halide sites
    (the pool of Table S2): exact (every symmetry-distinct one) or sampled (module doc)."""
    src = source or d.info["halide"]
    layers = partner_halide_layers(d, n_partner_layers, src)
    pool = halide_sites(d, src, layers=layers)
    pool = np.asarray(pool[d.arrays["domain"][pool] != "perovskite"], int)
    n_sites = len(pool)
    group = symmetry_group(d)
    local = site_permutations(group, pool)
    counts = sorted({max(1, int(np.floor(f * n_sites + 0.5 + 1e-9))) for f in (fo.fractions or S2_FRACTIONS)})
    out = []
    for n in counts:
        lo = log_binomial(n_sites, n)
        reps: list[tuple[int, ...]] = []
        weights: list[int] = []
        exact = False
        if np.exp(lo) <= 200_000:
            orbits, _ = distinct_subsets(pool, n, local)
            if len(orbits) <= fo.exact_max:
                exact = True
                pos = {int(a): i for i, a in enumerate(pool)}
                reps = [tuple(pos[a] for a in o.representative) for o in orbits]
                weights = [int(o.multiplicity) for o in orbits]
        if not exact:
            rng = np.random.default_rng(fo.seed + 1000 * n)
            found: dict[tuple[int, ...], int] = {}
            for _ in range(fo.samples):
                rep, _size = canonical_subset(sorted(rng.choice(n_sites, size=n, replace=False).tolist()), local)
                found[rep] = found.get(rep, 0) + 1
            reps, weights = list(found), list(found.values())
        configs = [exchange_sites(d, pool[list(r)], target, name=f"fe-n{n}-{k}", pattern="s2-free-energy",
                                  n_exchanged=n, weight=int(w), exact=exact)
                   for k, (r, w) in enumerate(zip(reps, weights))]
        out.append(Composition(n, n_sites, configs, weights, exact, lo, int(len(local))))
    return out


def free_energy_workflow(model: ScanModel, opts: RecipeOptions, fo: FreeEnergyOptions
                         ) -> tuple[Workflow, Atoms, str, list[Composition]]:
    """pristine → bottom-first N = 1…5 → model (d) (the S2 tasks) → every configuration from (d)."""
    hs = model.build("s2", opts.quick)
    wf = Workflow("free-energy")
    base_tasks(wf, hs, model, opts)
    bottom = chain(wf, layer_series(hs, "bottom", 5, model.target), opts)
    d = model_d(hs, target=model.target)
    d_name = config_task(wf, d, opts, bottom[-1])
    comps = sample_compositions(d, fo, model.target)
    for c in comps:
        for cfg in c.configs:
            config_task(wf, cfg, opts, d_name)
    return wf, hs, d_name, comps


def _composition_rows(c: Composition, de_total: list[float], fo: FreeEnergyOptions, t: float,
                      ok: bool, status: str) -> dict[str, Any]:
    """ΔE/ΔF of one composition at T (eV, per exchanged halide and total)."""
    if not ok:
        return {"status": status}
    e = np.asarray(de_total)
    if c.exact:
        st = ensemble(e, t, multiplicities=c.weights)
        err, half = 0.0, None
    else:
        draws = np.repeat(e, c.weights)
        st = ensemble(draws, t, log_omega=c.log_omega)
        err = bootstrap_free_energy(draws, t, c.log_omega, n_boot=fo.n_boot, seed=fo.seed)
        rng = np.random.default_rng(fo.seed)
        sub = rng.permutation(draws)[: max(1, len(draws) // 2)]
        half = ensemble(sub, t, log_omega=c.log_omega).free_energy
    n = c.n
    return {"status": status, "de_min": st.e_min / n, "de_mean": st.e_mean / n, "de_arith": st.e_arith / n,
            "df": st.free_energy / n, "df_total": st.free_energy, "df_err": err / n,
            "df_half": None if half is None else half / n, "ideal": -K_B * t * c.log_omega / n}


def run_free_energy(model: ScanModel | None = None, opts: RecipeOptions | None = None,
                    fo: FreeEnergyOptions | None = None) -> ScanResult:
    """The S2 free-energy table (one row per composition and temperature) and its verdict."""
    model, opts, fo = model or ScanModel(), opts or RecipeOptions(), fo or FreeEnergyOptions()
    wf, hs, d_name, comps = free_energy_workflow(model, opts, fo)
    summary, res = run_workflow(wf, opts)
    refs = ref_names(hs, model, opts)
    names = [cfg.info["name"] for c in comps for cfg in c.configs]
    needed = [d_name, *names, *refs]
    if not all(n in res for n in needed):
        return ScanResult("free-energy", [], {}, res, summary, complete=False)
    ref, ref_ok = reference(res, hs, model, opts)
    if ref is None:
        return ScanResult("free-energy", [], {}, res, summary, complete=False)
    gate = Gate(res, refs, ref_ok)
    src = hs.info["halide"]
    rows: list[FreeEnergyRow] = []
    verdicts: dict[float, str] = {}
    curves: dict[float, dict[str, list]] = {}
    for t in fo.temperatures:
        per: list[dict[str, Any]] = []
        for c in comps:
            cnames = [cfg.info["name"] for cfg in c.configs]
            es = exchange_energies_against((d_name, res[d_name]), [(n, res[n]) for n in cnames], ref, src,
                                           model.target)
            ok = all(gate.ok(n, d_name) for n in cnames)
            bad = sorted({b for n in cnames for b in gate.failed(n, d_name)})
            per.append(_composition_rows(c, [e.total for e in es], fo, t, ok,
                                         "converged" if ok else "not converged: " + ", ".join(bad[:4])))
        x = [0.0] + [100.0 * c.n / c.n_sites for c in comps]
        totals = [0.0] + [p.get("df_total") for p in per]
        etotals = [0.0] + [None if "de_min" not in p else p["de_min"] * c.n for p, c in zip(per, comps)]
        mix = (mixing_curve(x, totals).tolist() if all(v is not None for v in totals) and len(x) > 2
               else [None] * len(x))
        curves[t] = {"x": x, "df_total": totals, "de_min_total": etotals, "mixing": mix}
        for c, p, m in zip(comps, per, mix[1:]):
            rows.append(FreeEnergyRow(
                x_pct=round(100.0 * c.n / c.n_sites, 1), n_exchanged=c.n,
                configurations=(f"all {len(c.configs)} symmetry-distinct of C({c.n_sites},{c.n}) = "
                                f"{round(np.exp(c.log_omega))}" if c.exact else
                                f"{sum(c.weights)} random draws of C({c.n_sites},{c.n}) = {round(np.exp(c.log_omega))}"),
                n_relaxed=len(c.configs), temperature_k=float(t),
                de_min_kcal=_kcal(p.get("de_min")), de_mean_kcal=_kcal(p.get("de_mean")),
                de_arith_kcal=_kcal(p.get("de_arith")), df_kcal=_kcal(p.get("df")),
                df_err_kcal=_kcal(p.get("df_err")), df_half_kcal=_kcal(p.get("df_half")),
                ideal_kcal=_kcal(p.get("ideal")), df_total_kcal=_kcal(p.get("df_total")),
                mixing_kcal=_kcal(m), status=p["status"]))
        verdicts[t] = verdict(x, totals, etotals, t)
    checks = {f"an intermediate I/Cl ratio is stabilised at {fo.temperatures[0]:g} K":
              None if any(v is None for v in curves[fo.temperatures[0]]["mixing"]) else
              bool(min(curves[fo.temperatures[0]]["mixing"][1:-1], default=0.0) < 0)}
    extra = {"model": model_line(hs), "reference": ref.describe(), "curves": curves, "verdicts": verdicts,
             "pool": {"n_sites": comps[0].n_sites, "group_order": comps[0].group_order},
             "row_converged": [r.df_kcal is not None for r in rows]}
    return finish_gate(ScanResult("free-energy", rows, checks, res, summary, extra), needed)


def verdict(x: Sequence[float], df_total: Sequence[float | None], de_total: Sequence[float | None], t: float) -> str:
    """The paper's question in words: is ΔF(x) convex, where is its minimum, is an intermediate
    composition below the line between model (d) and 100 % (x in %, energies eV, total)."""
    if any(v is None for v in df_total):
        return f"{t:g} K: not assessed (a composition did not converge)"
    x = np.asarray(x, float)
    f = np.asarray(df_total, float)
    slopes = np.diff(f) / np.diff(x)
    convex = bool(np.all(np.diff(slopes) >= -1e-9))
    mix = mixing_curve(x, f)
    kmin = int(np.argmin(f))
    inner = mix[1:-1]
    below = inner.min() < 0 if len(inner) else False
    e_below = None
    if all(v is not None for v in de_total):
        e_mix = mixing_curve(x, np.asarray(de_total, float))[1:-1]
        e_below = bool(e_mix.min() < 0) if len(e_mix) else False
    words = (f"{t:g} K: ΔF(x) is {'convex' if convex else 'not convex'}; its minimum is at {x[kmin]:.0f} % I "
             f"({from_ev(f[kmin], 'kcal/mol'):.2f} kcal/mol in total against model (d)); ")
    if below:
        k = int(np.argmin(inner)) + 1
        words += (f"intermediate ratios are stabilised against separating into model (d) and the fully "
                  f"exchanged layers — most at {x[k]:.0f} % I, {from_ev(mix[k], 'kcal/mol'):.2f} kcal/mol below the line")
    else:
        words += "no intermediate ratio lies below the line between model (d) and the fully exchanged layers"
    if e_below is not None:
        words += (f"; with the lowest configurations alone (no entropy) an intermediate ratio "
                  f"{'is' if e_below else 'is not'} below that line")
    return words
