"""Issue 14: imports run one way — no import circle in the package (lazy imports inside
functions count too), and the layer rules hold (structures never import calculators; the engine,
``hetflow.workflows``, never imports the recipes over it, ``hetflow.recipes``).

On main three circles existed: ``calculators/relax.py`` ↔ ``calculators/run.py``,
``workflows/graph.py`` ↔ ``workflows/_engine.py`` and ``workflows/executors.py`` ↔
``workflows/dask_executor.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import hetflow

ROOT = Path(hetflow.__file__).resolve().parent


def _module_graph() -> nx.DiGraph:
    mods: dict[str, Path] = {}
    for p in ROOT.rglob("*.py"):
        parts = ["hetflow", *p.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1])
                    mod = base + ("." + node.module if node.module else "")
                else:
                    mod = node.module or ""
                subs = [f"{mod}.{a.name}" for a in node.names]
                # `from pkg import submodule` depends on the submodule (every submodule import runs
                # pkg/__init__ anyway); names that are not modules depend on `mod` itself
                targets = subs + ([mod] if any(t not in mods for t in subs) else [])
            for t in targets:
                if t in mods and t != m:
                    g.add_edge(m, t)
    return g


def test_no_import_circles():
    g = _module_graph()
    circles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert circles == [], f"import circles: {circles}"
    assert g.has_edge("hetflow.workflows.graph", "hetflow.workflows._engine")      # the arrows that remain
    assert g.has_edge("hetflow.workflows.executors", "hetflow.workflows.dask_executor")
    assert g.has_edge("hetflow.calculators.run", "hetflow.calculators.relax")


def test_structures_never_import_calculators():
    g = _module_graph()
    bad = [(a, b) for a, b in g.edges if a.startswith("hetflow.structures") and b.startswith("hetflow.calculators")]
    assert bad == []


def test_engine_never_imports_recipes():
    g = _module_graph()
    assert any(m.startswith("hetflow.recipes.") for m in g)  # the recipes floor exists
    bad = [(a, b) for a, b in g.edges if a.startswith("hetflow.workflows") and b.startswith("hetflow.recipes")]
    assert bad == []
