"""Regenerate the prepared models that ship with hetflow (package data ``hetflow/prepared``).

The default pair's model preparation — 17 GFN1-xTB probe single points that choose the junction,
the junction's relaxation in its periodic probe slab and the relaxation of the chalcohalide's cut
faces in the quick (2 × 2 × 5) and full (3 × 3 × 5) models — costs 10–90 minutes of GFN1-xTB on
2 cores.  It is deterministic, so hetflow ships its cache entries, under the same content keys
(structure + spec + code version) as the user's cache; :func:`hetflow.workflows.registry._cache_read`
falls back to them.  This module rebuilds them::

    HETFLOW_CACHE=/tmp/prep python -m hetflow.recipes.prepare [--out hetflow/prepared]

It builds each model through the same code as ``hetflow build heterostructure`` (computing what the
cache at ``$HETFLOW_CACHE`` lacks), records which cache entries each build used, copies them to
``--out`` and writes ``manifest.json`` with their provenance.  The paper-scale model shares the
junction (its faces are not relaxed), so it needs no entry of its own.  A test
(``tests/workflows/test_prepared.py``) checks that the shipped entries still match the keys the
builders ask for.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import subprocess
from pathlib import Path

from hetflow.structures.interface import build_heterostructure
from hetflow.workflows.registry import energy_relaxer, energy_scorer, prepared_dir, record_cache_use

__all__ = ["PREPARED_MODELS", "prepare", "manifest"]

#: the models whose preparation ships: name → (perovskite, partner, size, partner b/2 blocks)
PREPARED_MODELS: dict[str, tuple[str, str, tuple[int, int, int], int]] = {
    "quick": ("CsPbCl3", "Pb4S3Cl2", (2, 2, 5), 2),
    "full": ("CsPbCl3", "Pb4S3Cl2", (3, 3, 5), 2),
}


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, text=True,
                             capture_output=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _describe(d: dict, model: str) -> str:
    if "energy" in d:
        return "junction probe single point (periodic 168-atom probe slab)"
    what = d.get("what") or ("junction" if len(d.get("positions", [])) == 168 else "partner faces")
    return f"{what} relaxation" + ("" if what == "junction" else f" ({model} model)")


def manifest(entries: dict[str, dict]) -> dict:
    """The manifest of the shipped entries: {file: provenance}."""
    return {"about": "prepared models of hetflow: cache entries under the content keys of "
                     "hetflow.workflows.registry (structure + spec + code version)",
            "regenerate": "HETFLOW_CACHE=/tmp/prep python -m hetflow.recipes.prepare",
            "entries": entries}


def prepare(out: Path | None = None, models: tuple[str, ...] = tuple(PREPARED_MODELS),
            say=print) -> dict[str, dict]:
    """Build ``models`` (computing what ``$HETFLOW_CACHE`` lacks), copy the cache entries they used
    to ``out`` (default: the package's ``prepared`` folder) and write its manifest.  Returns the
    manifest's entries."""
    out = Path(out or prepared_dir())
    out.mkdir(parents=True, exist_ok=True)
    date = _dt.date.today().isoformat()
    commit = _commit()
    entries: dict[str, dict] = {}
    for name in models:
        perov, partner, size, cells = PREPARED_MODELS[name]
        with record_cache_use() as used:
            hs = build_heterostructure(perov, partner, size=size, partner_cells=cells,
                                       scorer=energy_scorer(progress=say), relaxer=energy_relaxer(progress=say))
        for path in used:
            if path.name in entries:
                entries[path.name]["models"].append(name)
                continue
            src = path if path.is_file() else prepared_dir() / path.name  # read from the shipped copy
            data = json.loads(src.read_text())
            if src.resolve() != (out / path.name).resolve():
                shutil.copyfile(src, out / path.name)
            entries[path.name] = {
                "what": _describe(data, name), "key": path.stem, "method": data.get("method", "GFN1-xTB"),
                "converged": data.get("converged", True), "atoms": data.get("atoms", len(data.get("positions", []))),
                "pair": f"{perov}/{partner}", "models": [name], "date": date, "hetflow_commit": commit,
            }
        say(f"{name}: {len(hs)} atoms, {sum(1 for e in entries.values() if name in e['models'])} cache entries")
    (out / "manifest.json").write_text(json.dumps(manifest(entries), indent=1, ensure_ascii=False) + "\n")
    return entries


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="Where to write (default: the package's prepared/).")
    ap.add_argument("--models", nargs="+", default=list(PREPARED_MODELS), choices=list(PREPARED_MODELS))
    a = ap.parse_args(argv)
    prepare(a.out, tuple(a.models))


if __name__ == "__main__":
    main()
