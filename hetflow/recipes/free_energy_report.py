"""Report of the free-energy recipe: Markdown, CSV and the picture of ΔE_min, ⟨ΔE⟩, ΔF against x."""

from __future__ import annotations

from pathlib import Path

from hetflow.analysis import plotting_thermo
from hetflow.analysis.energetics import markdown_table
from hetflow.analysis.published import TABLE_S2, TABLE_S3
from hetflow.analysis.units import from_ev
from hetflow.atomic import write_atomic
from hetflow.recipes.common import RecipeOptions, level_name
from hetflow.recipes.free_energy import FreeEnergyOptions
from hetflow.recipes.report import plot_meta, write_csv
from hetflow.recipes.result import ScanResult
from hetflow.recipes.rows import display_rows

__all__ = ["write_free_energy_report", "write_s3_distribution_report"]

S3_TITLE = ("Beyond Table S3 — the ordered ≈ 20 % I patterns against the distribution of random alloys")
TITLE = "Beyond Table S2 — configurational free energy of Cl→I exchange in the interfacial chalcohalide layers"


def write_free_energy_report(r: ScanResult, opts: RecipeOptions, fo: FreeEnergyOptions) -> list[Path]:
    """Write ``free-energy.md``, ``.csv`` and ``.png`` into ``opts.outdir``; returns the paths."""
    out = Path(opts.outdir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = fo.temperatures[0]
    pool = r.extra["pool"]
    lines = [f"# {TITLE}", "",
             f"- hetflow level: {level_name(opts)}; every relaxation converged to fmax {opts.relax_fmax} eV/Å, "
             "each configuration relaxed from model (d)'s relaxed geometry",
             f"- model: {r.extra['model']}",
             f"- sites: the {pool['n_sites']} halide sites of the first two halide layers of the chalcohalide "
             f"(Table S2's pool); {pool['group_order']} symmetry operations keep them",
             f"- reference: {r.extra['reference']}",
             f"- configurations: all symmetry-distinct ones (with multiplicities) where there are ≤ {fo.exact_max}, "
             f"else {fo.samples} uniform random draws (seed {fo.seed}) over all C(N, n)",
             "- ΔE, ΔF: per exchanged halide, against model (d) and the PbX2 reservoir (as Table S2, but "
             "cumulative from (d)); ΔF = −kT ln Σ e^(−βΔE) over the composition's ensemble; −kT ln Ω is the "
             "ideal mixing term of non-interacting sites; error: bootstrap standard deviation (0 when exact); "
             "'from half the draws' shows whether the sample pins ΔF", "",
             markdown_table(display_rows(r.rows)), "",
             "## The paper's question, answered at this level", ""]
    lines += [f"- {v}" for v in r.extra["verdicts"].values()]
    lines += ["", "Table S2 (published, one configuration per step, stepwise per halide): "
              + ", ".join(f"{p.step[0]}→{p.step[1]} %: {p.de:.2f}" for p in TABLE_S2) + " kcal/mol.", ""]
    md = out / "free-energy.md"
    write_atomic(md, "\n".join(lines) + "\n")
    csv = write_csv(r.rows, out / "free-energy.csv")
    main = [row for row in r.rows if row.temperature_k == t0]
    curve = r.extra["curves"][t0]
    png = plotting_thermo.plot_free_energy(
        [row.x_pct for row in main],
        {"ΔE min": [row.de_min_kcal for row in main], "⟨ΔE⟩ Boltzmann": [row.de_mean_kcal for row in main],
         f"ΔF ({t0:g} K)": [row.df_kcal for row in main]},
        {f"ΔF total ({t0:g} K)": [None if v is None else float(from_ev(v, "kcal/mol")) for v in curve["df_total"]],
         "ΔE min total": [None if v is None else float(from_ev(v, "kcal/mol")) for v in curve["de_min_total"]]},
        out / "free-energy.png", errors=[row.df_err_kcal for row in main], meta=plot_meta(r))
    return [md, csv, png]


def write_s3_distribution_report(r: ScanResult, opts: RecipeOptions, fo: FreeEnergyOptions) -> list[Path]:
    """Write ``s3-distribution.md``, ``.csv`` (the ordered patterns), ``s3-distribution-random.csv``
    (every random alloy's ΔE) and ``s3-distribution.png`` into ``opts.outdir``; returns the paths."""
    out = Path(opts.outdir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = fo.temperatures[0]
    sites = r.extra["sites"]
    lines = [f"# {S3_TITLE}", "",
             f"- hetflow level: {level_name(opts)}; every relaxation converged to fmax {opts.relax_fmax} eV/Å, "
             "each configuration relaxed from model (d)'s relaxed geometry",
             f"- model: {r.extra['model']}",
             f"- sites: the {sites['n_sites']} Cl sites left in model (d)'s CsPbCl3 domain, {sites['x']} exchanged "
             f"(Ω = C({sites['n_sites']}, {sites['x']}) ≈ 10^{sites['log_omega'] / 2.302585:.1f} random alloys)",
             f"- reference: {r.extra['reference']}",
             f"- random alloys: {fo.samples} uniform draws (seeds {opts.seed} … {opts.seed + fo.samples - 1}); "
             "ΔE totals against model (d) and the PbX2 reservoir, as Table S3",
             "- F = −kT ln(Ω ⟨e^(−βΔE)⟩) over the sample, its bootstrap error, the value from half the sample and "
             "the Gaussian estimate μ − σ²/2kT − kT ln Ω (sample and Gaussian apart: the sample does not pin the "
             f"low tail); G of a pattern = ΔE − kT ln g, g its symmetry-equivalent copies "
             f"({', '.join(f'{k} {v}' for k, v in r.extra['multiplicity'].items())}); G − F at {t0:g} K", "",
             "## The ordered patterns", "", markdown_table(display_rows(r.rows)), "",
             "## The random ensemble", "", markdown_table(display_rows(r.extra["ensemble"])), "",
             "## The paper's \"ordered is preferred\", against the distribution", ""]
    lines += [f"- {v}" for v in r.extra["verdicts"]]
    lines += ["", "Table S3 (published, one random configuration): " + ", ".join(
        f"{p.distribution} {p.de:.1f}" for p in TABLE_S3) + " kcal/mol.", ""]
    md = out / "s3-distribution.md"
    write_atomic(md, "\n".join(lines) + "\n")
    csv = write_csv(r.rows, out / "s3-distribution.csv")
    rnd = write_csv([{"seed": opts.seed + k, "ΔE total (kcal/mol)": v} for k, v in enumerate(r.extra["random_kcal"])],
                    out / "s3-distribution-random.csv")
    e0 = r.extra["ensemble"][0]
    png = plotting_thermo.plot_distribution(
        r.extra["random_kcal"], {row.distribution: row.de_total_kcal for row in r.rows}, out / "s3-distribution.png",
        lines={"random mean": e0.de_mean_kcal, f"F random ({t0:g} K)": e0.f_kcal}, meta=plot_meta(r))
    return [md, csv, rnd, png]
