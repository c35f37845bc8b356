"""Task types of a workflow graph and the counts of one run.

* :class:`CalcTask` — one calculation (single point or relaxation) of a structure with a
  :class:`~hetflow.calculators.base.CalcSpec`, optionally starting from the final geometry of
  another task (``start_from``).
* :class:`DerivedTask` — a Python callable over other tasks' results.
* :class:`Summary` — what a run did (cached, run, failed …).

Shared by :mod:`hetflow.workflows.graph` (building) and :mod:`hetflow.workflows._engine`
(running); it imports neither, so the arrows run one way: graph → _engine → _tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ase import Atoms

from hetflow.calculators.base import CalcSpec, calc_key
from hetflow.errors import WorkflowError


@dataclass
class CalcTask:
    """One calculation.  ``atoms`` may be None only when ``start_from`` names a parent."""

    name: str
    atoms: Atoms | None
    spec: CalcSpec
    start_from: str | None = None

    def static_key(self) -> str | None:
        """Content key when known before running anything (no parent geometry needed)."""
        return None if self.start_from else calc_key(self.atoms, self.spec)

    def start_atoms(self, parent_final: Atoms | None) -> Atoms:
        """The structure to compute: own atoms, or the parent's final geometry.

        With both, the task's own per-atom labels are kept and positions/cell taken from the
        parent (same atom count required).
        """
        if self.start_from is None:
            return self.atoms
        if parent_final is None:
            raise WorkflowError(f"task {self.name!r}: parent {self.start_from!r} has no structure")
        if self.atoms is None:
            return parent_final.copy()
        if len(self.atoms) != len(parent_final):
            raise WorkflowError(f"task {self.name!r}: {len(self.atoms)} atoms but parent "
                                f"{self.start_from!r} has {len(parent_final)}")
        out = self.atoms.copy()
        out.positions = parent_final.positions
        out.cell = parent_final.cell
        return out


@dataclass
class DerivedTask:
    """A Python callable over other tasks' results: ``func(**{input_name: result})``."""

    name: str
    func: Callable[..., Any]
    inputs: tuple[str, ...]


@dataclass
class Summary:
    """Counts of one workflow run."""

    cached: int = 0
    run: int = 0
    ingested: int = 0
    failed: int = 0
    skipped: int = 0
    derived: int = 0
    pending: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [f"{self.cached} cached", f"{self.run} run"]
        if self.ingested:
            parts.append(f"{self.ingested} recovered from work dir")
        if self.derived:
            parts.append(f"{self.derived} derived")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.pending:
            parts.append(f"{self.pending} still queued")
        return ", ".join(parts)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.pending
