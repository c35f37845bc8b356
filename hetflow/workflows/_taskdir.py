"""The work-directory protocol shared by every executor.

One directory per calculation task, ``<workdir>/tasks/<safe task name>/``:

* ``input.json``  — written by the controller: key, name, spec, structure.
* ``result.json`` — written by the worker (atomic rename): energy (eV), forces (eV/Å), final
  structure, MO data, versions and provenance.  The controller ingests it into the store.
* ``error.json``  — written by the worker when the calculation raised.
* ``job.json``    — executor bookkeeping (scheduler job id, attempts, history).
* ``job.out`` / ``job.err`` — stdout/stderr of the batch job (schedulers only).

Workers never touch the database; every file write is tmp-file + ``os.replace``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.io.jsonio import decode, encode

from hetflow.calculators.base import CalcSpec


def safe_name(name: str) -> str:
    """File-system and scheduler safe version of a task name: ``[A-Za-z0-9._-]``, ≤ 64 chars."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "task"
    return s[:64]


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace`` (atomic on POSIX)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, default=_default)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return str(o)


def read_json(path: Path) -> dict[str, Any] | None:
    """Parsed JSON of ``path`` or None when missing or unreadable (a half-written file)."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


class TaskDir:
    """Paths and files of one task's directory."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @classmethod
    def for_task(cls, workdir: Path | str, name: str) -> "TaskDir":
        return cls(Path(workdir) / "tasks" / safe_name(name))

    input = property(lambda self: self.root / "input.json")
    result = property(lambda self: self.root / "result.json")
    error = property(lambda self: self.root / "error.json")
    job = property(lambda self: self.root / "job.json")
    stdout = property(lambda self: self.root / "job.out")
    stderr = property(lambda self: self.root / "job.err")

    def prepare(self, name: str, key: str, atoms: Atoms, spec: CalcSpec) -> None:
        """Write ``input.json`` for ``key``; stale files of another key are moved to ``old/``."""
        self.root.mkdir(parents=True, exist_ok=True)
        old = read_json(self.input)
        # a deferred chain input (hetflow.workflows.chain) is this task waiting for its key: keep
        # the directory (its job is queued behind the parent's) and write the resolved input
        if old is not None and old.get("key") != key and not old.get("deferred"):
            dest = self.root / "old" / f"{old.get('key', 'unknown')}-{int(time.time())}"
            dest.mkdir(parents=True, exist_ok=True)
            for p in list(self.root.iterdir()):
                if p.name != "old":
                    shutil.move(str(p), dest / p.name)
        if old is None or old.get("key") != key:
            write_json_atomic(self.input, {"name": name, "key": key, "spec": spec.to_dict(),
                                           "atoms": encode(atoms)})

    def load_input(self) -> tuple[str, str, Atoms, CalcSpec]:
        d = read_json(self.input)
        if d is None:
            raise FileNotFoundError(self.input)
        return d["name"], d["key"], decode(d["atoms"]), CalcSpec.from_dict(d["spec"])

    def result_for(self, key: str) -> dict[str, Any] | None:
        """The parsed result file when present, produced for ``key`` and storable
        (garbage, a foreign key or a corrupt payload count as no result: recompute)."""
        d = read_json(self.result)
        return d if isinstance(d, dict) and d.get("key") == key and valid_payload(d) else None

    def error_for(self, key: str) -> dict[str, Any] | None:
        d = read_json(self.error)
        return d if isinstance(d, dict) and d.get("key") == key else None

    def job_info(self) -> dict[str, Any]:
        return read_json(self.job) or {}

    def save_job_info(self, info: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.job, info)

    def clear_outcome(self) -> None:
        """Remove the error file before a retry."""
        self.error.unlink(missing_ok=True)


def valid_payload(d: dict[str, Any]) -> bool:
    """A result payload the store can take: finite energy (eV), a decodable structure,
    forces None or finite N×3 (eV/Å), a valid CalcSpec."""
    import math

    import numpy as np

    try:
        atoms = decode(d["atoms"])
        if not isinstance(atoms, Atoms) or not math.isfinite(float(d["energy"])):
            return False
        if d.get("forces") is not None:
            f = np.asarray(d["forces"], dtype=float)
            if f.shape != (len(atoms), 3) or not np.isfinite(f).all():
                return False
        CalcSpec.from_dict(dict(d["spec"]))
    except Exception:  # noqa: BLE001 - any defect means "not a usable result"
        return False
    return True


def tail(path: Path, lines: int = 10) -> str:
    """Last ``lines`` lines of a text file ('' when missing)."""
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return ""


def decode_atoms(s: str) -> Atoms:
    return decode(s)


def encode_atoms(atoms: Atoms) -> str:
    return encode(atoms)
