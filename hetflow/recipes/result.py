"""What a recipe returns: report rows, the paper's conclusions checked, the stored results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ScanResult", "finish_gate", "unconverged"]


@dataclass
class ScanResult:
    """What a scan produced: report rows, qualitative checks, stored results by task."""

    table: str
    rows: list[dict[str, Any]]
    checks: dict[str, bool | None]
    results: dict[str, Any] = field(default_factory=dict)
    summary: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    complete: bool = True


def unconverged(results: dict, names) -> list[str]:
    """Tasks among ``names`` whose stored calculation did not converge (SCF or geometry)."""
    return [n for n in names if n in results and not getattr(results[n], "converged", True)]


def finish_gate(r: ScanResult, names) -> ScanResult:
    """Record the non-converged calculations among ``names`` and the gate's overall verdict."""
    bad = unconverged(r.results, names)
    r.extra["unconverged"] = bad
    r.checks["every relaxation converged"] = not bad
    return r
