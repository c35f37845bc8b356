"""Recipes whose next calculations depend on earlier results (grow a supercell until the
energy converges; relax the best of a pre-screen), run as rounds of one content-keyed workflow.

A *stage* is any object with ``tasks(results) -> [(name, atoms, spec), …]``: every task it
needs given the results so far (earlier ones included, so the workflow can be rebuilt each
round).  :func:`run_staged` rebuilds the workflow from all stages, runs what is missing
(finished tasks are cached in the store), and repeats until no stage asks for a new task.
With a detached scheduler executor a round may end with tasks still queued: the driver then
stops with ``complete=False`` and the same call later continues where it stopped.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from ase import Atoms

from hetflow.calculators.base import CalcSpec
from hetflow.recipes.common import RecipeOptions, run_workflow
from hetflow.workflows.graph import Summary, Workflow

TaskTuple = tuple[str, Atoms, CalcSpec]


class Stage(Protocol):
    def tasks(self, results: dict[str, Any]) -> list[TaskTuple]:  # pragma: no cover - protocol
        ...


def run_staged(name: str, stages: Sequence[Stage], opts: RecipeOptions, max_rounds: int = 60
               ) -> tuple[Summary, dict[str, Any], bool]:
    """Run ``stages`` to completion; returns (summary over all rounds, results, complete)."""
    results: dict[str, Any] = {}
    total = Summary()
    for _ in range(max_rounds):
        wanted: dict[str, TaskTuple] = {}
        for st in stages:
            for t in st.tasks(results):
                wanted.setdefault(t[0], t)
        new = [n for n in wanted if n not in results]
        if not new:
            total.cached = max(0, len(results) - total.run)
            return total, results, True
        wf = Workflow(name)
        for n, atoms, spec in wanted.values():
            wf.add_calc(n, atoms, spec)
        summary, res = run_workflow(wf, opts)
        results.update(res)
        total.run += summary.run
        total.failed += summary.failed
        total.ingested += summary.ingested
        total.pending = summary.pending
        total.skipped = summary.skipped
        total.failures.update(summary.failures)
        if any(n not in res for n in new):
            total.cached = max(0, len(results) - total.run)
            return total, results, False
    total.cached = max(0, len(results) - total.run)
    return total, results, False
