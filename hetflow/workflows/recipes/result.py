"""What a recipe returns: report rows, the paper's conclusions checked, the stored results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ScanResult"]


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
