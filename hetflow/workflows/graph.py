"""Task graph: calculations and derived steps as a networkx DiGraph.

* A :class:`CalcTask` is one calculation (single point or relaxation) of a structure with a
  :class:`~hetflow.calculators.base.CalcSpec`.  With ``start_from="other"`` its start geometry
  is the final structure of task ``other`` (e.g. a relaxation feeding the next step); its
  content key is then computed once ``other`` has finished.
* A :class:`DerivedTask` is a Python callable over the results of other tasks (keyword
  arguments named after its inputs; calculation inputs arrive as
  :class:`~hetflow.workflows.store.StoredResult`).  Derived values live in memory only.

Edges point from a task to the tasks that need its result.  The content key of a calculation
is :func:`~hetflow.calculators.base.calc_key` (structure, spec, calculation-code version): a
task whose key is already in the store is not run again.
"""

from __future__ import annotations

from typing import Any, Callable

import networkx as nx
from ase import Atoms

from hetflow import validate
from hetflow.calculators.base import CalcSpec
from hetflow.errors import InputError, WorkflowError
from hetflow.workflows._tasks import CalcTask, DerivedTask, Summary

__all__ = ["CalcTask", "DerivedTask", "Summary", "Workflow"]


class Workflow:
    """A named DAG of tasks.  Build with :meth:`add_calc` / :meth:`add_derived`, then :meth:`run`."""

    def __init__(self, name: str = "workflow"):
        self.name = _checked_name(name, "workflow name")
        self.graph = nx.DiGraph()

    # -- building ----------------------------------------------------------------
    def _add(self, name: str, task: CalcTask | DerivedTask, parents: list[str]) -> None:
        _checked_name(name, "task name")
        if name in self.graph and "task" in self.graph.nodes[name]:
            raise WorkflowError(f"duplicate task name {name!r}")
        self.graph.add_node(name, task=task)
        for p in parents:
            self.graph.add_edge(p, name)

    def add_calc(self, name: str, atoms: Atoms | None, spec: CalcSpec, start_from: str | None = None) -> str:
        """Add a calculation; ``start_from`` = task whose final structure is the start geometry."""
        _checked_name(name, "task name")
        if start_from is not None:
            _checked_name(start_from, f"task {name!r}: start_from")
        if not isinstance(spec, CalcSpec):
            raise WorkflowError(f"task {name!r}: spec must be a CalcSpec, got {type(spec).__name__}")
        if atoms is not None and not isinstance(atoms, Atoms):
            raise WorkflowError(f"task {name!r}: the structure must be an ase.Atoms, got {type(atoms).__name__}")
        if atoms is None and start_from is None:
            raise WorkflowError(f"task {name!r} needs a structure or start_from")
        if atoms is not None and len(atoms) == 0:
            raise WorkflowError(f"task {name!r}: the structure has no atoms")
        if atoms is not None:
            try:  # finite positions; a periodic cell of non-zero volume and bounded size
                validate.calc_cell(atoms, spec.periodic, "structure")
            except InputError as exc:
                raise WorkflowError(f"task {name!r}: {exc}") from None
        self._add(name, CalcTask(name, atoms, spec, start_from), [start_from] if start_from else [])
        return name

    def add_derived(self, name: str, func: Callable[..., Any], inputs: list[str] | tuple[str, ...]) -> str:
        """Add a derived step computed in the controller from ``inputs``' results."""
        if not callable(func):
            raise WorkflowError(f"derived task {name!r}: func must be callable")
        inputs = tuple(inputs)
        for i in inputs:
            _checked_name(i, f"derived task {name!r}: input")
        self._add(name, DerivedTask(name, func, tuple(inputs)), list(inputs))
        return name

    # -- inspection --------------------------------------------------------------
    def task(self, name: str) -> CalcTask | DerivedTask:
        return self.graph.nodes[name]["task"]

    @property
    def tasks(self) -> list[str]:
        return list(self.graph.nodes)

    def parents(self, name: str) -> list[str]:
        return list(self.graph.predecessors(name))

    def validate(self) -> list[str]:
        """Check references and acyclicity; returns the tasks in dependency order."""
        missing = [n for n in self.graph.nodes if "task" not in self.graph.nodes[n]]
        if missing:
            users = sorted({u for m in missing for u in self.graph.successors(m)})
            raise WorkflowError(f"task(s) {', '.join(users)} depend on unknown task(s) {', '.join(sorted(missing))}")
        try:
            cycle = nx.find_cycle(self.graph)
        except nx.NetworkXNoCycle:
            return list(nx.topological_sort(self.graph))
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise WorkflowError(f"dependency cycle: {path}")

    def run(self, store, executor=None, workdir: str = "hetflow-work", progress: bool = False, **kw):
        """Run to completion (or until a detached executor has submitted what it can)."""
        from hetflow.workflows._engine import Engine
        from hetflow.workflows.executors import LocalExecutor

        return Engine(self, store, executor or LocalExecutor(), workdir, progress=progress, **kw).run()


def _checked_name(value: Any, what: str) -> str:
    from hetflow import validate
    from hetflow.errors import InputError

    try:
        return validate.name(value, what)
    except InputError as exc:
        raise WorkflowError(str(exc)) from None
