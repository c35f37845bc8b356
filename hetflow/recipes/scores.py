"""How close a level of theory comes to the published Tables S1–S3: errors and the paper's conclusions.

For a finished table (typed rows of :mod:`hetflow.recipes.rows`) this gives

* the mean absolute error against the published column in the normalisation that matches the
  paper's (kcal/mol): S1 — the cumulative per-halide energies of both series (10 values) and the
  interface − bottom difference (5 values); S2 — the stepwise energy per exchanged halide (5
  values); S3 — ΔE − ΔE(random) of the three ordered patterns (3 values, the level-independent part
  of the total); strain — the S1 strain rows (3 values, %);
* the sign of each of the paper's conclusions (S1: interface − bottom > 0 for N = 1…5; S2: first
  step most favourable, first step relieves strain; S3: every ordered pattern below random, PbI2 ⊥
  lowest; strain: 5c < 5a < 5b), as True / False / None (None: a row did not converge);
* the number of rows that carry a converged number.

Only converged rows enter (the gate withholds the others): an error over fewer rows says so in
``n``.  Pure functions: nothing is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["TableScore", "score_table", "score_markdown"]


@dataclass
class TableScore:
    """Errors (kcal/mol or %) against the published table and the paper's conclusions checked."""

    table: str
    mae: dict[str, float | None] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)
    conclusions: dict[str, bool | None] = field(default_factory=dict)
    rows_converged: int = 0
    rows: int = 0

    @property
    def signs_right(self) -> int:
        return sum(v is True for v in self.conclusions.values())

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "mae": self.mae, "n": self.n, "conclusions": self.conclusions,
                "rows_converged": self.rows_converged, "rows": self.rows}


def _mae(pairs: Sequence[tuple[float | None, float | None]]) -> tuple[float | None, int]:
    ok = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not ok:
        return None, 0
    return float(np.mean([abs(a - b) for a, b in ok])), len(ok)


def score_table(table: str, rows: Sequence[Any], checks: dict[str, bool | None] | None = None,
                strain_rows: Sequence[Any] = ()) -> TableScore:
    """Score one table's typed rows (``rows`` of S1Row/S2Row/S3Row, ``strain_rows`` of StrainRow)."""
    checks = checks or {}
    s = TableScore(table, rows=len(rows))
    if table == "s1":
        s.mae["cumulative ΔE"], s.n["cumulative ΔE"] = _mae(
            [(r.de_interface_cum_kcal, r.published_interface_kcal) for r in rows]
            + [(r.de_bottom_cum_kcal, r.published_bottom_kcal) for r in rows])
        s.mae["interface − bottom"], s.n["interface − bottom"] = _mae(
            [(r.diff_cum_kcal, r.published_diff_kcal) for r in rows])
        for r in rows:
            s.conclusions[f"interface − bottom > 0 at N = {r.n}"] = None if r.diff_cum_kcal is None else r.diff_cum_kcal > 0
        s.rows_converged = sum(r.diff_cum_kcal is not None for r in rows)
        if strain_rows:
            s.mae["strain (%)"], s.n["strain (%)"] = _mae([(r.strain_pct, r.published_pct) for r in strain_rows])
            key = next((k for k in checks if k.startswith("strain:")), None)
            if key:
                s.conclusions["strain 5c < 5a < 5b"] = checks[key]
    elif table == "s2":
        s.mae["stepwise ΔE"], s.n["stepwise ΔE"] = _mae([(r.de_step_kcal, r.published_de_kcal) for r in rows])
        s.mae["strain after (%)"], s.n["strain after (%)"] = _mae(
            [(r.strain_after_pct, r.published_strain_after_pct) for r in rows])
        for key in ("first interfacial step most favourable", "first step relieves interfacial strain"):
            s.conclusions[key] = checks.get(key)
        s.rows_converged = sum(r.de_step_kcal is not None for r in rows)
    elif table == "s3":
        s.mae["ΔE − ΔE(random)"], s.n["ΔE − ΔE(random)"] = _mae(
            [(r.de_minus_random_kcal, r.published_de_minus_random_kcal) for r in rows if r.distribution != "random"])
        for key in ("every ordered distribution below random", "PbI2 layer perpendicular lowest"):
            s.conclusions[key] = checks.get(key)
        s.rows_converged = sum(r.de_total_kcal is not None for r in rows)
    else:
        raise ValueError(f"no published table to score {table!r} against")
    return s


def score_markdown(s: TableScore) -> str:
    """The score as a short Markdown section."""
    lines = ["## Against the published table", ""]
    for k, v in s.mae.items():
        unit = "" if "%" in k else " kcal/mol"
        lines.append(f"- MAE {k}: " + ("—" if v is None else f"{v:.2f}{unit}") + f" over {s.n.get(k, 0)} converged values")
    for k, v in s.conclusions.items():
        lines.append(f"- {k}: " + ("not assessed" if v is None else "as published" if v else "**not as published**"))
    lines.append(f"- {s.signs_right} of {len(s.conclusions)} conclusions as published; "
                 f"{s.rows_converged} of {s.rows} rows converged")
    return "\n".join(lines)
