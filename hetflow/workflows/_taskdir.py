"""The work-directory protocol shared by every executor.

One directory per calculation task, ``<workdir>/tasks/<dir>/`` with ``<dir>`` =
:func:`task_dirname` (the name itself when it is already a safe file name, else a sanitised
prefix plus a hash of the full name: distinct names never share a directory):

* ``input.json``  — written by the controller: key, name, spec, structure.
* ``result.json`` — written by the worker (atomic rename): energy (eV), forces (eV/Å), final
  structure, MO data, versions and provenance.  The controller ingests it into the store.
* ``error.json``  — written by the worker when the calculation raised.
* ``job.json``    — executor bookkeeping (scheduler job id, attempts, history).
* ``job.out`` / ``job.err`` — stdout/stderr of the batch job (schedulers only).
* ``claim.json``  — the controller managing the task now (pid, host, start time); another
  controller leaves the task to it while it is alive (see :meth:`TaskDir.try_claim`).

Workers never touch the database; every file write is a uniquely named temporary file +
``os.replace`` (:mod:`hetflow.atomic`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.io.jsonio import decode, encode

from hetflow import atomic, procs
from hetflow.calculators.base import CalcSpec
from hetflow.errors import WorkflowError

log = logging.getLogger("hetflow.workflows")

#: seconds after which the claim of a controller on another host counts as abandoned when
#: its heartbeat stopped (HETFLOW_CLAIM_LEASE overrides); same-host owners are checked directly
CLAIM_LEASE_S = 180.0
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HASHED = re.compile(r".*-[0-9a-f]{10}")


def safe_name(name: str) -> str:
    """File-system and scheduler safe version of a name: ``[A-Za-z0-9._-]``, ≤ 64 chars
    (many names map to one: job names only — task directories use :func:`task_dirname`)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "task"
    return s[:64]


def task_dirname(name: str) -> str:
    """The directory of task ``name``: one-to-one.  A name that is already a safe file name
    (``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``, not ending in ``-`` + 10 hex digits) is used as it
    is; any other becomes ``<safe prefix>-<sha256(name)[:10]>`` (so ``"a b"``, ``"a/b"`` and
    ``"a_b"`` get three directories, and so do two long names sharing 64 characters)."""
    name = str(name)
    if _SAFE.fullmatch(name) and not _HASHED.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{safe_name(name)[:48]}-{digest}"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` through a uniquely named temporary file and ``os.replace``
    (atomic on POSIX); a failed write (disk full) is an OutputError naming ``path``."""
    atomic.write_atomic(path, json.dumps(obj, default=_default))


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


def read_json(path: Path, max_bytes: int = 256 * 2**20) -> Any:
    """Parsed JSON of ``path`` or None when missing, unreadable, not a regular file or larger
    than ``max_bytes`` (a half-written or foreign file is no information)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        import stat

        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return json.loads(fh.read(max_bytes + 1))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(fd)


def read_json_dict(path: Path) -> dict[str, Any] | None:
    """:func:`read_json` when the document is a JSON object, else None (wrong shape)."""
    d = read_json(path)
    return d if isinstance(d, dict) else None


class TaskDir:
    """Paths and files of one task's directory."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @classmethod
    def for_task(cls, workdir: Path | str, name: str) -> "TaskDir":
        return cls(Path(workdir) / "tasks" / task_dirname(name))

    input = property(lambda self: self.root / "input.json")
    result = property(lambda self: self.root / "result.json")
    error = property(lambda self: self.root / "error.json")
    job = property(lambda self: self.root / "job.json")
    stdout = property(lambda self: self.root / "job.out")
    stderr = property(lambda self: self.root / "job.err")
    claim = property(lambda self: self.root / "claim.json")
    _KEEP = ("old", "claim.json", ".claim.lock")

    def prepare(self, name: str, key: str, atoms: Atoms, spec: CalcSpec) -> None:
        """Write ``input.json`` for ``key``; stale files of another key are moved to ``old/``."""
        self.root.mkdir(parents=True, exist_ok=True)
        old = read_json_dict(self.input)
        # a deferred chain input (hetflow.workflows.chain) is this task waiting for its key: keep
        # the directory (its job is queued behind the parent's) and write the resolved input
        if old is not None and old.get("key") != key and not old.get("deferred"):
            tag = re.sub(r"[^A-Za-z0-9]", "", str(old.get("key", "")))[:24] or "unknown"
            dest = self.root / "old" / f"{tag}-{time.time_ns()}"
            dest.mkdir(parents=True, exist_ok=True)
            for p in list(self.root.iterdir()):
                if p.name not in self._KEEP:
                    shutil.move(str(p), dest / p.name)
        if old is None or old.get("key") != key:
            write_json_atomic(self.input, {"name": name, "key": key, "spec": spec.to_dict(),
                                           "atoms": encode(atoms)})

    def load_input(self) -> tuple[str, str, Atoms, CalcSpec]:
        d = read_json_dict(self.input)
        if d is None:
            raise WorkflowError(f"task input {self.input} is missing or not a JSON object")
        try:
            return str(d["name"]), str(d["key"]), decode(d["atoms"]), CalcSpec.from_dict(dict(d["spec"]))
        except Exception as exc:  # noqa: BLE001 - a damaged input file
            raise WorkflowError(f"task input {self.input} is damaged: {type(exc).__name__}: {exc}") from None

    def result_for(self, key: str) -> dict[str, Any] | None:
        """The parsed result file when present, produced for ``key`` and storable
        (garbage, a foreign key or a corrupt payload count as no result: recompute)."""
        d = read_json_dict(self.result)
        return d if d is not None and d.get("key") == key and valid_payload(d) else None

    def result_problem(self, key: str) -> str | None:
        """Why the result file present for ``key`` cannot be stored (None: absent, foreign
        or fine)."""
        d = read_json_dict(self.result)
        if d is None or d.get("key") != key:
            return None
        return payload_problem(d)

    def error_for(self, key: str) -> dict[str, Any] | None:
        d = read_json_dict(self.error)
        return d if d is not None and d.get("key") == key else None

    def job_info(self) -> dict[str, Any]:
        """Executor bookkeeping (a missing or wrong-shape job.json counts as empty)."""
        d = read_json_dict(self.job) or {}
        if not isinstance(d.get("losses", []), list):
            d["losses"] = []
        if not isinstance(d.get("history", []), list):
            d["history"] = []
        if not isinstance(d.get("attempts", 0), int) or isinstance(d.get("attempts"), bool):
            d["attempts"] = 0
        return d

    def save_job_info(self, info: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.job, info)

    def clear_outcome(self) -> None:
        """Before a (re)submission: remove the error file and every temporary file left in
        the directory (no writer can be running: the caller holds the claim and no job of
        the task is alive)."""
        self.error.unlink(missing_ok=True)
        atomic.sweep_stale(self.root, all_hosts=True)

    # -- claims: which controller manages the task ------------------------------
    @contextmanager
    def _claim_mutex(self):
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".claim.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held only for a read-check-write of claim.json
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def claim_owner(self) -> dict[str, Any] | None:
        return read_json_dict(self.claim)

    def try_claim(self, lease: float | None = None) -> tuple[bool, dict[str, Any] | None]:
        """Take the task for this process.  Returns ``(True, None)`` when it was free or
        already ours, ``(True, previous)`` when the previous owner was dead (same host: pid
        gone or reused; other host: no heartbeat for ``lease`` s) and was taken over, and
        ``(False, owner)`` when a live owner keeps it."""
        lease = claim_lease() if lease is None else lease
        me = procs.me()
        with self._claim_mutex():
            owner = self.claim_owner()
            previous = None
            if owner is not None and not _same_owner(owner, me):
                state = procs.owner_state(owner)
                if state == "alive":
                    return False, owner
                if state == "remote":
                    try:
                        age = time.time() - self.claim.stat().st_mtime
                    except OSError:
                        age = lease + 1
                    if age < lease:
                        return False, owner
                previous = owner
            elif owner is None and self.claim.exists():
                previous = {"pid": "?", "host": "?"}  # unreadable claim: take it over
            write_json_atomic(self.claim, me | {"since": time.time()})
            return True, previous

    def heartbeat(self) -> None:
        """Refresh the claim's time stamp (the lease other hosts look at)."""
        try:
            os.utime(self.claim)
        except OSError:
            pass

    def release(self) -> None:
        """Drop the claim when it is ours."""
        try:
            with self._claim_mutex():
                owner = self.claim_owner()
                if owner is not None and _same_owner(owner, procs.me()):
                    self.claim.unlink(missing_ok=True)
        except OSError:
            pass


def claim_lease() -> float:
    try:
        return max(1.0, float(os.environ.get("HETFLOW_CLAIM_LEASE", CLAIM_LEASE_S)))
    except ValueError:
        return CLAIM_LEASE_S


def _same_owner(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("pid", "host", "start", "boot"))


def valid_payload(d: dict[str, Any]) -> bool:
    """A result payload the store can take: finite energy (eV), a decodable structure,
    forces None or finite N×3 (eV/Å), a valid CalcSpec."""
    return payload_problem(d) is None


def payload_problem(d: Any) -> str | None:
    """Why a result payload cannot be stored (None when it can): see :func:`valid_payload`."""
    import math

    import numpy as np

    try:
        if not isinstance(d, dict):
            return "not a JSON object"
        try:
            energy = float(d["energy"])
        except (KeyError, TypeError, ValueError):
            return f"energy is not a number ({str(d.get('energy'))[:40]!r})"
        if not math.isfinite(energy):
            return f"energy is not finite ({energy} eV)"
        atoms = decode(d["atoms"])
        if not isinstance(atoms, Atoms):
            return "the final structure cannot be decoded"
        if not np.isfinite(atoms.positions).all():
            return "the final structure has non-finite positions"
        if d.get("forces") is not None:
            f = np.asarray(d["forces"], dtype=float)
            if f.shape != (len(atoms), 3):
                return f"forces have shape {f.shape}, not ({len(atoms)}, 3)"
            if not np.isfinite(f).all():
                return "forces are not finite"
        CalcSpec.from_dict(dict(d["spec"]))
    except Exception as exc:  # noqa: BLE001 - any defect means "not a usable result"
        return f"damaged ({type(exc).__name__})"
    return None


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
