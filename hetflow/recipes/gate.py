"""The convergence gate of the scans: no energy enters a table unless every relaxation behind it
converged (:class:`Gate`), and what each row reports of its relaxations (:func:`relaxation_record`)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["relaxation_record", "Gate", "status"]


def relaxation_record(stored: Any) -> dict[str, Any]:
    """Converged flag, residual max force (eV/Å) and force calls of a stored relaxation."""
    forces = getattr(stored, "forces", None)
    fmax = float(np.linalg.norm(np.asarray(forces), axis=1).max()) if forces is not None and len(forces) else None
    prov = getattr(stored, "provenance", {}) or {}
    calls = prov.get("force_calls")
    if calls is None:
        calls = prov.get("opt_steps")
    return {"converged": bool(getattr(stored, "converged", False)), "fmax": fmax,
            "force_calls": None if calls is None else int(calls)}


class Gate:
    """Which stored relaxations converged; a row's value passes only if all behind it did."""

    def __init__(self, results: dict[str, Any], always: list[str], reference_ok: bool = True):
        self.results = results
        self.always = list(always)
        self.reference_ok = reference_ok  # a reference computed outside these tasks (bulk PbX2)

    def ok(self, *names: str) -> bool:
        return self.reference_ok and all(n in self.results and bool(getattr(self.results[n], "converged", False))
                                         for n in (*names, *self.always))

    def failed(self, *names: str) -> list[str]:
        bad = [n for n in (*names, *self.always)
               if n not in self.results or not bool(getattr(self.results[n], "converged", False))]
        return bad + ([] if self.reference_ok else ["bulk PbX2 reference"])

    def value(self, v: float, *names: str) -> float | None:
        return float(v) if self.ok(*names) else None

    def record(self, name: str) -> dict[str, Any]:
        return relaxation_record(self.results[name]) if name in self.results else {}


def status(gate: Gate, *names: str) -> str:
    """A row's status: ``converged`` or ``not converged: <the tasks that did not>``."""
    bad = gate.failed(*names)
    return "converged" if not bad else "not converged: " + ", ".join(bad)
