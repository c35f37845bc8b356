"""``hetflow reproduce``: Tables S1–S3 and the ZIF study, hetflow's numbers beside the paper's."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from hetflow.analysis.energetics import markdown_table
from hetflow.calculators import mlip_models
from hetflow.errors import InputError
from hetflow.recipes.bulk import run_bulk_table
from hetflow.recipes.common import RecipeOptions
from hetflow.recipes.common import level_name
from hetflow.recipes.exchange_scan import STRAIN_DEFINITION, ScanModel, ScanResult, run_s1, run_s2, run_s3
from hetflow.recipes.report import (
    band_edge_markdown,
    band_edge_rows,
    plot_result,
    write_table_report,
)
from hetflow.recipes.rows import display_rows
from hetflow.recipes.scores import score_markdown, score_table
from hetflow.recipes.zif import run_zif

TABLES = ("s1", "s2", "s3", "zif", "bulk")
#: what "all" runs (bulk's CsPbI3 phases are part of zif; its PbX2 references are extra)
ALL = ("s1", "s2", "s3", "zif")
TITLES = {
    "s1": "Table S1 — Cl→I in N perovskite layers (kcal/mol per exchanged halide)",
    "s2": "Table S2 — Cl→I in the two interfacial chalcohalide layers (kcal/mol per exchanged halide)",
    "s3": "Table S3 — ≈20 % Cl→I in the CsPbCl3 domain (kcal/mol, total for the step)",
    "zif": "CsPbI3 (α/δ) + ZIF-62 fragments: ligand-exchange reaction energies (kJ/mol)",
    "bulk": "Bulk α/γ/δ CsPbI3, PbCl2, PbI2: relaxed, Γ-point-converged energies per formula unit",
}


def _runner(table: str) -> Callable:
    if table == "zif":
        return lambda model, opts: run_zif(opts)
    if table == "bulk":
        return lambda model, opts: run_bulk_table(opts)
    return {"s1": run_s1, "s2": run_s2, "s3": run_s3}[table]


def expand(tables: list[str] | tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for t in tables:
        t = t.lower()
        if t == "all":
            out += [x for x in ALL if x not in out]
        elif t in TABLES:
            if t not in out:
                out.append(t)
        else:
            raise InputError(f"unknown table {t!r}; choose from {', '.join(TABLES)} or all")
    return out


def reproduce(tables: list[str] | tuple[str, ...], opts: RecipeOptions, model: ScanModel | None = None,
              echo: Callable[[str], None] = print) -> dict[str, ScanResult]:
    """Run the requested tables; write ``<table>.md/.csv/.png`` into ``opts.outdir``."""
    results: dict[str, ScanResult] = {}
    for t in expand(tables):
        r = _runner(t)(model or ScanModel(), opts)
        results[t] = r
        echo(f"{t}: {r.summary}")
        if not r.complete:
            echo(f"{t}: calculations still running or failed — rerun the same command to collect "
                 f"(state: hetflow status --workdir {opts.outdir / 'work' / t})")
            continue
        notes = _notes(r, opts)
        paths = write_table_report(r, Path(opts.outdir), TITLES[t], notes)
        if r.extra.get("strain_rows"):
            with paths["md"].open("a") as fh:
                fh.write(f"\n## Interfacial strain\n\nDefinition: {STRAIN_DEFINITION}.\n\n"
                         + markdown_table(display_rows(r.extra["strain_rows"])) + "\n")
        elif r.table == "s2":
            with paths["md"].open("a") as fh:
                fh.write(f"\nStrain before/after: {STRAIN_DEFINITION}; every S2 model keeps model (d)'s perovskite "
                         f"exchange, so its reference is the NC with model (d)'s layers exchanged "
                         f"({', '.join(sorted(set(r.extra.get('strain_references', {}).values())))}).\n")
        if r.extra.get("normalisation"):
            with paths["md"].open("a") as fh:
                fh.write("\n## Normalisation\n\nThe paper: \"all energies are normalized to the number of exchanged "
                         "halide ions\". Stepwise = the step N−1 → N per halide exchanged in it; cumulative = "
                         f"pristine → N per halide exchanged so far. {r.extra['normalisation']}.\n")
        for key in ("pristine_mo", "exchanged_mo"):
            if key in r.extra:
                with paths["md"].open("a") as fh:
                    fh.write(f"\n## Band edges ({key.replace('_mo', '')} model)\n\n"
                             + band_edge_markdown(band_edge_rows(r.extra[key])) + "\n")
        if t in ("s1", "s2", "s3"):
            score = score_table(t, r.rows, r.checks, r.extra.get("strain_rows", ()))
            r.extra["score"] = score
            with paths["md"].open("a") as fh:
                fh.write("\n" + score_markdown(score) + "\n")
        if r.extra.get("markdown_sections"):
            with paths["md"].open("a") as fh:
                fh.write("\n" + "\n\n".join(r.extra["markdown_sections"]) + "\n")
        plots = plot_result(r, Path(opts.outdir)) if t not in ("zif", "bulk") else r.extra.get("plots", [])
        echo(paths["md"].read_text())
        echo("wrote " + ", ".join(str(p) for p in [*paths.values(), *plots]))
    return results


def _notes(r: ScanResult, opts: RecipeOptions) -> list[str]:
    if r.table in ("zif", "bulk"):
        level = f"{opts.method} (tblite)" if opts.level == "xtb" else level_name(opts)
        notes = [f"hetflow level: {level}; {r.extra.get('mode', '')}", f"model: {r.extra.get('model', '')}",
                 f"reference: {r.extra.get('reference', '')}", "published: Li et al., Nat. Commun. 2023 (xTB)"]
        if r.extra.get("charges"):
            notes.append(f"charges: {r.extra['charges']}")
        bad = r.extra.get("unconverged") or []
        if bad:
            notes.append(f"not converged — not used for the paper's conclusions: {', '.join(bad)}")
        return notes
    mode = (f"quick: smaller faithful model, every relaxation converged to fmax {opts.relax_fmax} eV/Å"
            if opts.quick else f"full: every relaxation converged to fmax {opts.relax_fmax} eV/Å")
    pre = f"; pre-relaxed with {opts.prerelax} (energies are the target level's own)" if opts.prerelax else ""
    if opts.accelerate:
        which = "every relaxation" if opts.accelerate_warm else "the relaxations from built geometries"
        pre += (f"; {which} guided by {mlip_models.model(opts.accelerate).name} and finished by "
                f"{opts.optimizer} at the target level (energies and geometries are the target level's own)")
    notes = [f"hetflow level: {level_name(opts)}; {mode}; {opts.optimizer}, warm-started from each parent{pre}",
             f"model: {r.extra.get('model', '')}",
             f"reference: {r.extra.get('reference', '')}",
             "published: Livakas et al., SI (CP2K PBE, DZVP-MOLOPT-SR-GTH, 400 Ry)",
             "gate: a number is shown only when every relaxation behind it converged; fmax and force calls "
             "are those of the row's relaxation(s)"]
    bad = r.extra.get("unconverged") or []
    if bad:
        notes.append(f"not converged — their rows show no number and their checks are not assessed: {', '.join(bad)}")
    if r.table == "s3":
        c = r.extra.get("counts", {})
        notes.append(f"each distribution exchanges {c.get('n_target')} of the {c.get('n_remaining')} halides "
                     f"left in the perovskite of model (d)" + (f" — {c['count_note']}" if c.get("count_note") else ""))
        if not r.extra.get("counts_equal", True):
            notes.append("the four distributions exchange different numbers of halides (see x)")
        seeds = r.extra.get("random_seeds") or {}
        if seeds:
            notes.append("random: mean of " + ", ".join(f"{k.rsplit('-', 1)[-1]} "
                                                        f"{'—' if v is None else f'{v:.2f}'}" for k, v in seeds.items())
                         + " kcal/mol")
    return notes
