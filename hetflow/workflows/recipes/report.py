"""Reports of the recipes: Markdown + CSV tables beside the published numbers, and plots."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

from hetflow.analysis.energetics import markdown_table


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        path.write_text("")
        return path
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


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
    md += ["", markdown_table(result.rows), "", "## Conclusions of the paper, checked", "",
           checks_markdown(result.checks), ""]
    paths = {"md": outdir / f"{result.table}.md", "csv": outdir / f"{result.table}.csv"}
    paths["md"].write_text("\n".join(md))
    write_csv(result.rows, paths["csv"])
    return paths


def plot_result(result, outdir: Path) -> list[Path]:
    """The table's picture: S1 ΔE per layer for both directions, S2 energy + strain, S3 bars,
    and Figure-6-style level diagrams when MO data were computed."""
    from hetflow.analysis import plotting
    from hetflow.analysis.published import s1_series

    out: list[Path] = []
    if result.table == "s1":
        ser = result.extra["series"]
        out.append(plotting.plot_layer_energies(list(range(1, 6)), {"from interface": ser["interface"],
                                                                     "from bottom": ser["bottom"]},
                                                outdir / "s1.png", published=s1_series()))
    elif result.table == "s2":
        steps = [r["step (I/Cl %)"] for r in result.rows]
        out.append(plotting.plot_s2(steps, [r["ΔE (kcal/mol)"] for r in result.rows], result.extra["strain"],
                                    outdir / "s2.png"))
    elif result.table == "s3":
        out.append(plotting.plot_bars([r["distribution"] for r in result.rows],
                                      [r["ΔE − ΔE(random)"] for r in result.rows], outdir / "s3.png",
                                      published=[r["published ΔE − ΔE(random)"] for r in result.rows]))
    for key in ("pristine_mo", "exchanged_mo"):
        if key in result.extra:
            out.append(plot_projection(result.extra[key], outdir / f"{result.table}-{key.replace('_mo', '')}-levels.png"))
    return out


def plot_projection(stored, path: Path, window: float = 3.0) -> Path:
    """Figure-6-style level diagram of a stored result with MO data (levels within ±window eV
    of the gap)."""
    import numpy as np

    from hetflow.analysis import plotting
    from hetflow.analysis.projections import domain_fractions, homo_index

    mo = stored.mo
    fr = domain_fractions(mo, stored.atoms)
    e = np.asarray(mo.eigenvalues)
    h = homo_index(mo)
    lumo = e[e > e[h]].min() if np.any(e > e[h]) else e[h]
    sel = np.flatnonzero((e > e[h] - window) & (e < lumo + window))
    return plotting.plot_levels(e, fr, path, indices=sel.tolist(), homo=h)


def band_edge_rows(stored, n: int = 3) -> list[dict[str, Any]]:
    """Band-edge rows (HOMO−n … LUMO+n) with the dominant domain of each level."""
    from hetflow.analysis.projections import band_edges, domain_fractions

    return band_edges(stored.mo, domain_fractions(stored.mo, stored.atoms), n, n)


def band_edge_markdown(rows: list[dict[str, Any]]) -> str:
    flat = [{"level": r["label"], "E (eV)": r["energy_eV"], "occupation": r["occupation"], "dominant": r["dominant"],
             **{f"{g} (%)": 100 * v for g, v in r["fractions"].items()}} for r in rows]
    return markdown_table(flat)
