"""What an executor reports to the controller (shared by every executor module, importing none)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Event:
    """Something happened to a task: ``finished`` (look at its files) or ``lost``."""

    name: str
    kind: str
    message: str = ""
