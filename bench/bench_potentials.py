"""Benchmark — every offline machine-learned potential scored against the published Tables S1–S3.

For each potential of the wheels (``--mlip``: CHGNet 0.3.0, 0.2.0, r²SCAN; 7net-0, 7net-l3i5,
7net-MF-0 with its PBE head) runs ``hetflow reproduce`` of the chosen tables on the chosen model
(``--model quick``: the 244-atom quick model, S3 on it too; ``full``: 3 × 3 × 5, 501 atoms; S3 always
needs the full model for whole planes; ``paper``: the paper's 5 × 5 × 5 on 3 blocks, 1530 atoms) in a fresh output folder and store, every relaxation
converged (the recipes' gate), and records per table:

* MAE against the published column in the normalisation that matches (S1 cumulative, S2 stepwise,
  S3 ΔE − ΔE(random); strain %) — :mod:`hetflow.recipes.scores`;
* the paper's conclusions (S1: interface − bottom > 0 for N = 1…5; S2: first step most favourable,
  first step relieves strain; S3: ordered below random, PbI2 ⊥ lowest; strain 5c < 5a < 5b);
* wall time (s) and force calls of the table's relaxations.

    python bench/bench_potentials.py [--mlip chgnet 7net-0 …] [--tables s1 s2 s3] [--model quick|full|paper]
        [--workers 2 --threads 1] [--tag NAME]

Results: ``bench/results/potentials_<model>[_tag].json`` (one entry per potential, written after
each potential so a long run keeps what it finished).  Wall times depend on the load (printed).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import RESULTS, header, machine, save

ALL_MLIPS = ("chgnet", "chgnet-0.2.0", "chgnet-r2scan", "7net-0", "7net-l3i5", "7net-mf-0")


def _calls(r) -> int:
    from hetflow.recipes.exchange_scan import relaxation_record

    return sum(int(relaxation_record(v)["force_calls"] or 0) for v in r.results.values()
               if getattr(getattr(v, "spec", None), "task", "") == "relax")


def _scan_model(model: str):
    """quick: 2 × 2 × 5 on 2 blocks; full: the default 3 × 3 × 5; paper: the paper's 5 × 5 × 5 on 3
    blocks (1530 atoms) with the shipped relaxed junction and its chalcohalide faces as cut (their
    GFN1 relaxation is out of reach on 2 cores; at the potential's level every relaxation relaxes
    the whole model anyway)."""
    from hetflow.recipes.exchange_scan import ScanModel
    from hetflow.structures.interface import PAPER_SCALE

    if model == "quick":
        return ScanModel(size=(2, 2, 5), partner_cells=2)
    if model == "paper":
        return ScanModel(size=PAPER_SCALE["size"], partner_cells=PAPER_SCALE["partner_cells"],
                         registry=ScanModel().energy_registry(True), relax=False)
    return ScanModel()


def run_one(mlip: str, tables: list[str], model: str, workers: int, threads: int, out: Path) -> dict:
    from hetflow.recipes.common import RecipeOptions
    from hetflow.recipes.reproduce import reproduce

    opts = RecipeOptions(level="mlip", mlip=mlip, quick=model == "quick", outdir=out, progress=False,
                         executor_options={"workers": workers, "threads": threads})
    scan = _scan_model(model)
    entry: dict = {"mlip": mlip, "model": model, "tables": {}}
    for t in tables:
        t0 = time.perf_counter()
        res = reproduce([t], opts, model=scan, echo=lambda s: None)[t]
        wall = time.perf_counter() - t0
        score = res.extra.get("score")
        entry["tables"][t] = {
            "wall_s": round(wall, 1), "force_calls": _calls(res), "complete": res.complete,
            "unconverged": list(res.extra.get("unconverged") or []),
            "score": None if score is None else score.to_dict(),
            "model_line": res.extra.get("model", ""),
            "rows": [r.__dict__ for r in res.rows],
            "strain_rows": [r.__dict__ for r in res.extra.get("strain_rows", [])],
        }
        s = entry["tables"][t]["score"] or {}
        mae = {k: None if v is None else round(v, 2) for k, v in (s.get("mae") or {}).items()}
        print(f"   {mlip:14s} {t}: {wall:7.1f} s, MAE {json.dumps(mae, ensure_ascii=False)}, "
              f"conclusions {sum(v is True for v in (s.get('conclusions') or {}).values())}/"
              f"{len(s.get('conclusions') or {})}", flush=True)
    return entry


def summary(name: str) -> str:
    """A Markdown table of the results file ``name``: one row per potential and table."""
    d = json.loads((RESULTS / f"{name}.json").read_text())["potentials"]
    lines = ["| potential | table | MAE (kcal/mol; strain %) | conclusions as published | rows converged | wall (s) |",
             "|---|---|---|---|---|---|"]
    for mlip, e in d.items():
        for t, r in e["tables"].items():
            s = r.get("score") or {}
            mae = "; ".join(f"{k} {v:.2f}" for k, v in (s.get("mae") or {}).items() if v is not None)
            concl = s.get("conclusions") or {}
            wrong = [k for k, v in concl.items() if v is False]
            lines.append(f"| {mlip} | {t} | {mae} | {sum(v is True for v in concl.values())}/{len(concl)}"
                         + (f" (not: {', '.join(wrong)})" if wrong else "") +
                         f" | {s.get('rows_converged')}/{s.get('rows')} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mlip", nargs="+", default=list(ALL_MLIPS))
    p.add_argument("--tables", nargs="+", default=["s1", "s2", "s3"])
    p.add_argument("--model", choices=["quick", "full", "paper"], default="quick")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default="")
    p.add_argument("--outdir", default=None)
    p.add_argument("--summary", action="store_true", help="print the Markdown table of the results file and stop")
    a = p.parse_args(argv)
    name = f"potentials_{a.model}" + (f"_{a.tag}" if a.tag else "")
    if a.summary:
        print(summary(name))
        return 0
    m = header(f"Offline potentials against Tables {', '.join(a.tables)} ({a.model} model)")
    base = Path(a.outdir or tempfile.mkdtemp(prefix="hetflow-bench-potentials-"))
    path = RESULTS / f"{name}.json"
    done = json.loads(path.read_text())["potentials"] if path.exists() else {}
    for mlip in a.mlip:
        done[mlip] = run_one(mlip, a.tables, a.model, a.workers, a.threads, base / mlip)
        save(name, {"start": m, "end": machine(), "potentials": done})
    print(f"   results: {RESULTS / (name + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
