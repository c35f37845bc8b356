"""Reports of the recipes: Markdown + CSV tables beside the published numbers, and plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

from hetflow import atomic
from hetflow.analysis import plotting
from hetflow.analysis.energetics import markdown_table
from hetflow.analysis.plotting import PlotMeta
from hetflow.analysis.projections import band_edges, domain_fractions
from hetflow.analysis.published import TABLE_S2, s1_series
from hetflow.calculators import mlip_models
from hetflow.calculators import registry as backends
from hetflow.recipes.exchange_scan import PAPER_NORMALISATION
from hetflow.recipes.rows import display_rows


def write_csv(rows: Sequence[Any], path: Path) -> Path:
    """``rows`` (typed rows of :mod:`~hetflow.recipes.rows` or dicts) as CSV, headers with units."""
    rows = display_rows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = io.StringIO(newline="")
    if rows:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    return atomic.write_atomic(path, fh.getvalue(), fsync=False)


def checks_markdown(checks: dict[str, bool | None]) -> str:
    lines = []
    for what, ok in checks.items():
        mark = "yes" if ok else ("not assessed" if ok is None else "**no**")
        lines.append(f"- {what}? {mark}")
    return "\n".join(lines)


def write_table_report(result, outdir: Path, title: str, notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``<table>.md`` and ``<table>.csv`` for a :class:`ScanResult`; returns the paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", ""]
    md += [f"- {n}" for n in notes if n]
    md += ["", markdown_table(display_rows(result.rows)), "", "## Conclusions of the paper, checked", "",
           checks_markdown(result.checks), ""]
    paths = {"md": outdir / f"{result.table}.md", "csv": outdir / f"{result.table}.csv"}
    atomic.write_atomic(paths["md"], "\n".join(md), fsync=False)
    write_csv(result.rows, paths["csv"])
    return paths


def plot_meta(result, note: str = ""):
    """What the table's plots show (:class:`~hetflow.analysis.plotting.PlotMeta`): the model
    line, the level of theory of its calculations, which of them did not converge."""
    specs = [getattr(r, "spec", None) for r in result.results.values()]
    levels = sorted({f"{s.method} ({backends.backend(s.backend).label})" for s in specs if s is not None})
    guides = sorted({mlip_models.model(s.accelerate).name for s in specs if getattr(s, "accelerate", None)})
    bad = list(result.extra.get("unconverged") or [])
    note = note or str(result.extra.get("plot_note", ""))
    if guides:
        note = "; ".join(x for x in (note, f"relaxations guided by {', '.join(guides)}, energies the target level's own") if x)
    return PlotMeta(model=str(result.extra.get("model", "")), level=", ".join(levels),
                    converged=None if "unconverged" not in result.extra else not bad, unconverged=bad, note=note)


def _ok(results, *names) -> bool | None:
    """All of ``names`` converged (None when none of them is in ``results``)."""
    got = [results[n] for n in names if n in results]
    return None if not got else all(getattr(r, "converged", True) for r in got)


def row_converged(result):
    """Per-row converged flags of a table's plot: ``result.extra["row_converged"]`` when the
    recipe gives it, else from the task names of the scans (a row's energy needs its model and
    its parent): S1 ``{"from interface": [...], "from bottom": [...]}``, S2/S3 a list."""
    if "row_converged" in result.extra:
        return result.extra["row_converged"]
    res = result.results
    if result.table == "s1":
        out = {}
        for start, key in (("interface", "from interface"), ("bottom", "from bottom")):
            names = ["pristine"] + [f"s1-{start}-N{n}" for n in range(1, 6)]
            out[key] = [_ok(res, a, b) for a, b in zip(names, names[1:])]
        return out
    if result.table == "s2":
        steps = sorted((n for n in res if n.startswith("s2-e-") and not n.endswith("-mo")),
                       key=lambda n: int(n.rsplit("-", 1)[1]))
        chain = ["s2-d", *steps]
        return [_ok(res, a, b) for a, b in zip(chain, chain[1:])][: len(result.rows)]
    if result.table == "s3":
        by_label = {"random": "random", "CsI layer perpendicular": "csx_perp", "CsI layer parallel": "csx_par",
                    "PbI2 layer perpendicular": "pbx2_perp"}
        return [_ok(res, "s2-d", f"s3-{by_label.get(r.distribution, r.distribution)}") for r in result.rows]
    return None


def plot_result(result, outdir: Path, note: str = "") -> list[Path]:
    """The table's picture: S1 ΔE per layer for both directions, S2 energy + strain, S3 bars,
    and Figure-6-style level diagrams when MO data were computed.  Titles and captions state
    model, level of theory and convergence; rows that did not converge are marked."""
    meta = plot_meta(result, note)
    flags = row_converged(result)
    out: list[Path] = []
    if result.table == "s1":
        # the normalisation that matches the paper's (the report's verdict says which tracks it)
        key = "series_cumulative" if PAPER_NORMALISATION == "cumulative" else "series"
        ser = result.extra[key]
        meta.note = (meta.note + "; " if meta.note else "") + f"{PAPER_NORMALISATION} normalisation (as the paper's)"
        out.append(plotting.plot_layer_energies(list(range(1, 6)), {"from interface": ser["interface"],
                                                                     "from bottom": ser["bottom"]},
                                                outdir / "s1.png", published=s1_series(), meta=meta,
                                                converged=flags))
    elif result.table == "s2":
        steps = [r.step for r in result.rows]
        strain_ok = result.extra.get("strain_ok") or [True] * len(result.extra["strain"])
        strain = [v if ok else None for v, ok in zip(result.extra["strain"], strain_ok)]
        out.append(plotting.plot_s2(steps, [r.de_step_kcal for r in result.rows], strain,
                                    outdir / "s2.png", meta=meta, converged=flags,
                                    published=[p.de for p in TABLE_S2][: len(steps)],
                                    published_strain=[TABLE_S2[0].strain_before,
                                                      *(p.strain_after for p in TABLE_S2)][: len(strain)]))
    elif result.table == "s3":
        out.append(plotting.plot_bars([r.distribution for r in result.rows],
                                      [r.de_minus_random_kcal for r in result.rows], outdir / "s3.png",
                                      published=[r.published_de_minus_random_kcal for r in result.rows],
                                      meta=meta, converged=flags))
    models = result.extra.get("level_models")
    if models:
        out.append(plot_level_models(models, outdir / f"{result.table}-levels.png", meta))
    else:
        for key, parent in (("pristine_mo", "pristine"), ("exchanged_mo", None)):
            if key in result.extra:
                label = key.replace("_mo", "")
                out.append(plot_level_models([(label, result.extra[key], result.results.get(parent))],
                                             outdir / f"{result.table}-{label}-levels.png", meta))
    return out


def plot_level_models(models, path: Path, meta=None, window: tuple[float, float] = (2.0, 2.0)) -> Path:
    """Figure-6 level diagram of ``models`` = [(label, stored result with MO data, stored
    result of the relaxation its geometry came from or None), …] side by side; a panel is
    converged when its MO calculation and that relaxation are."""
    panels = [plotting.level_model(mo_res, label,
                                   converged=bool(mo_res.converged and (geo is None or geo.converged)))
              for label, mo_res, *rest in models for geo in [rest[0] if rest else None]]
    return plotting.plot_level_diagram(panels, path, meta=meta, window=window)


def plot_projection(stored, path: Path, window: float = 2.0, meta=None) -> Path:
    """Figure-6-style level diagram of one stored result with MO data (HOMO − window …
    LUMO + window eV)."""
    return plot_level_models([(stored.name or "model", stored, None)], path, meta, (window, window))


def band_edge_rows(stored, n: int = 3) -> list[dict[str, Any]]:
    """Band-edge rows (HOMO−n … LUMO+n) with the dominant domain of each level."""
    return band_edges(stored.mo, domain_fractions(stored.mo, stored.atoms), n, n)


def band_edge_markdown(rows: list[dict[str, Any]]) -> str:
    flat = [{"level": r["label"], "E (eV)": r["energy_eV"], "occupation": r["occupation"], "dominant": r["dominant"],
             **{f"{g} (%)": 100 * v for g, v in r["fractions"].items()}} for r in rows]
    return markdown_table(flat)
