"""Result store on ASE's database: an SQLite file by default, or a ``postgresql://`` URL.

One row per finished calculation, identified by the content key ``calc_key`` (unique: a
database-level unique index makes ingestion idempotent even with concurrent writers).

Row contents (browse with ``ase db results.db``):

* structure: the final geometry; energy (eV) and forces (eV/Å) as a single-point calculator;
* key-value pairs: ``calc_key``, ``task`` (first task name that produced it), ``workflow``,
  ``backend``, ``method``, ``calc_task``, ``converged``, ``wall_time`` (s);
* ``data``: ``spec`` (CalcSpec dict), ``provenance`` (versions, host, start/end time, recovery
  actions, job id), ``mo`` (MO data when computed), ``arrays`` (per-atom labels such as
  ``domain``/``layer``), ``extra`` (backend extras).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from hetflow.calculators.base import CalcSpec, MOData
from hetflow import procs
from hetflow.errors import HetflowError, StoreError, WorkflowError
from hetflow.workflows._taskdir import decode_atoms

log = logging.getLogger("hetflow.store")

#: seconds a writer waits for the store lock held by a live process before giving up
#: (environment variable HETFLOW_LOCK_TIMEOUT overrides)
LOCK_TIMEOUT_S = 600.0
_LOCK_WAIT_NOTICE_S = 2.0

#: per-atom arrays ASE's database stores itself
_ASE_ARRAYS = {"numbers", "positions", "momenta", "masses", "initial_magmoms",
               "initial_charges", "tags"}
_LOCK_ID = 7_210_616  # PostgreSQL advisory lock guarding schema creation
_UNIQUE_INDEX = ("CREATE UNIQUE INDEX IF NOT EXISTS hetflow_calc_key_unique "
                 "ON text_key_values (value) WHERE key = 'calc_key'")


@dataclass
class StoredResult:
    """One stored calculation. energy in eV, forces in eV/Å, atoms = final structure."""

    key: str
    name: str
    energy: float
    forces: np.ndarray | None
    atoms: Atoms
    converged: bool
    spec: CalcSpec
    provenance: dict[str, Any] = field(default_factory=dict)
    mo: MOData | None = None
    row_id: int | None = None


def _is_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def redact(location: str | Path) -> str:
    """A store location safe to print or write: user and password of a ``postgresql://``
    URL (and ``password=`` query parameters) replaced by ``…``."""
    loc = str(location)
    if not _is_url(loc):
        return loc
    try:
        u = urlsplit(loc)
        netloc = u.netloc
        if "@" in netloc:
            netloc = "…@" + netloc.rsplit("@", 1)[1]
        query = urlencode([(k, "…" if k.lower() in ("password", "user") else v)
                           for k, v in parse_qsl(u.query, keep_blank_values=True)], safe="…")
        return urlunsplit((u.scheme, netloc, u.path, query, u.fragment))
    except ValueError:
        return loc.split("://", 1)[0] + "://…"


def _lock_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("HETFLOW_LOCK_TIMEOUT", LOCK_TIMEOUT_S)))
    except ValueError:
        return LOCK_TIMEOUT_S


class ResultStore:
    """Cached results keyed by content key.  ``location``: SQLite path or postgresql:// URL.

    ``readonly=True`` (reading commands such as ``hetflow results``): the store must exist —
    a missing one is a one-line StoreError, and nothing is created (no file, folder, schema or
    lock file); an SQLite file is opened read-only (``mode=ro``), so a store on a read-only
    file system can be read.  Such a store refuses :meth:`ingest`."""

    def __init__(self, location: str | Path, readonly: bool = False):
        import ase.db

        self.location = str(location)
        self.readonly = readonly
        self.is_postgres = _is_url(self.location)
        if not self.is_postgres:
            path = Path(self.location)
            if path.suffix != ".db":
                raise WorkflowError(f"store path must end in .db (SQLite) or be a postgresql:// URL: {location}")
            if readonly:
                _existing_store(path)
            else:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise WorkflowError(f"cannot create store directory {path.parent}: {exc.strerror or exc}") from None
        if not self.is_postgres:
            self._note_ase_lock()
        try:
            # ASE's own lock file (<db>.lock) waits forever for a writer that was killed:
            # hetflow serialises its writers itself (see _lock)
            self.db = ase.db.connect(self.location, type="postgresql" if self.is_postgres else "db",
                                     use_lock_file=False)
            if readonly:
                if not self.is_postgres:
                    self.db._connect = _readonly_connector(Path(self.location))
                self.db.count()  # a file that is not an ASE database fails here, in one line
            else:
                self._ensure_unique_index()
        except ImportError as exc:
            raise WorkflowError(
                f"PostgreSQL store needs psycopg2-binary and ase-db-backends ({exc})") from exc
        except HetflowError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection problems are user-fixable
            raise StoreError(f"cannot open result store {self._shown()}: {_store_detail(exc)}") from exc

    def _shown(self) -> str:
        return redact(self.location)

    @property
    def shown(self) -> str:
        """The location with credentials hidden (for messages, manifests, tables)."""
        return redact(self.location)

    def _note_ase_lock(self) -> None:
        ase_lock = Path(f"{self.location}.lock")
        if ase_lock.exists():
            log.warning("note: ignoring %s (ASE's lock file, left by a killed writer?); hetflow locks "
                        "the store itself — delete it if no `ase db` command is writing", ase_lock)

    @contextmanager
    def _guard(self, action: str):
        """Database and file-system errors as one-line StoreErrors naming the store."""
        try:
            yield
        except HetflowError:
            raise
        except Exception as exc:  # noqa: BLE001 - sqlite3/psycopg2/OS errors of the store
            if self._is_duplicate(exc):
                raise
            raise StoreError(_store_message(self._shown(), action, exc)) from exc

    # -- low level ---------------------------------------------------------------
    def _ensure_unique_index(self) -> None:
        """Create the schema and the unique index once, serialised across processes."""
        with self._lock(0):
            self.db.count()  # creates the schema
            con = self.db._connect()
            try:
                cur = con.cursor()
                cur.execute(_UNIQUE_INDEX)
                con.commit()
            finally:
                con.close()

    @contextmanager
    def _lock(self, lock_id: int = 0):
        """Cross-process exclusive lock with a bounded wait: a PostgreSQL advisory lock, or an
        ``flock`` on ``<db>.hetflow-lock<id>`` (released by the kernel when its holder dies).

        The lock file records its holder; a holder that died without releasing is reported
        when its lock is taken over, a live holder is named while waiting, and the wait ends
        with a StoreError after ``HETFLOW_LOCK_TIMEOUT`` seconds (default 600).  Writes take
        lock 1: ASE's PostgreSQL backend reads the new row id from the shared sequence, which
        is only correct while no other session inserts at the same time.
        """
        if self.is_postgres:
            with self._pg_lock(lock_id):
                yield
            return
        import fcntl

        path = Path(f"{self.location}.hetflow-lock{lock_id}")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the store lock {path}: {exc.strerror or exc}") from None
        try:
            deadline, noticed = time.monotonic() + _lock_timeout(), False
            t0 = time.monotonic()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                holder = _read_owner(fd)
                if not noticed and time.monotonic() - t0 > _LOCK_WAIT_NOTICE_S:
                    log.warning("waiting for the result store lock %s held by %s (a live process; time-out "
                                "%.0f s, HETFLOW_LOCK_TIMEOUT)", path, procs.describe(holder), _lock_timeout())
                    noticed = True
                if time.monotonic() >= deadline:
                    raise StoreError(f"result store {self._shown()} is locked by {procs.describe(holder)} "
                                     f"(still running) for more than {_lock_timeout():.0f} s; "
                                     f"stop it or raise HETFLOW_LOCK_TIMEOUT")
                time.sleep(0.1)
            previous = _read_owner(fd)
            if previous:  # a holder releases by clearing its record: this one died while writing
                log.warning("taking over the result store lock %s from %s, which died while writing",
                            path, procs.describe(previous))
            _write_owner(fd, procs.me())
            try:
                yield
            finally:
                _write_owner(fd, None)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextmanager
    def _pg_lock(self, lock_id: int):
        import psycopg2

        try:
            con = psycopg2.connect(self.location)
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"cannot open result store {self._shown()}: {_first_line(exc)}") from None
        try:
            con.autocommit = True
            cur = con.cursor()
            deadline, t0, noticed = time.monotonic() + _lock_timeout(), time.monotonic(), False
            while True:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_ID + lock_id,))
                if cur.fetchone()[0]:
                    break
                if not noticed and time.monotonic() - t0 > _LOCK_WAIT_NOTICE_S:
                    log.warning("waiting for the result store lock of %s held by another session "
                                "(time-out %.0f s, HETFLOW_LOCK_TIMEOUT)", self._shown(), _lock_timeout())
                    noticed = True
                if time.monotonic() >= deadline:
                    raise StoreError(f"result store {self._shown()} is locked by another session for more "
                                     f"than {_lock_timeout():.0f} s")
                time.sleep(0.1)
            yield
        finally:
            con.close()  # releases the session lock (the server does so for a dead session too)

    # -- queries -----------------------------------------------------------------
    def has(self, key: str) -> bool:
        with self._guard("reading"):
            return self.db.count(calc_key=key) > 0

    def keys(self) -> set[str]:
        with self._guard("reading"):
            return {row.calc_key for row in self.db.select("calc_key")}

    def count(self) -> int:
        with self._guard("reading"):
            return self.db.count("calc_key")

    def get(self, key: str) -> StoredResult | None:
        with self._guard("reading"):
            for row in self.db.select(calc_key=key, limit=1):
                return self._from_row(row)
        return None

    def rows(self, workflow: str | None = None) -> Iterator[StoredResult]:
        sel = {"workflow": _kv_text(workflow)} if workflow else {}
        with self._guard("reading"):
            rows = list(self.db.select("calc_key", sort="id", **sel))
        for row in rows:
            with self._guard("reading a row"):
                out = self._from_row(row)
            yield out

    def _from_row(self, row) -> StoredResult:
        atoms = row.toatoms()
        data = row.data or {}
        for name, values in (data.get("arrays") or {}).items():
            atoms.set_array(name, np.asarray(values))
        forces = row.get("forces")
        mo = data.get("mo")
        names = data.get("names") or {}
        name = names.get("task") if isinstance(names, dict) and isinstance(names.get("task"), str) \
            else str(row.get("task", ""))
        return StoredResult(
            key=row.calc_key, name=name, energy=float(row.energy),
            forces=None if forces is None else np.asarray(forces), atoms=atoms,
            converged=bool(row.get("converged", True)), spec=CalcSpec.from_dict(dict(data["spec"])),
            provenance=dict(data.get("provenance") or {}),
            mo=None if not mo else MOData.from_dict(dict(mo)), row_id=row.id,
        )

    # -- ingestion ---------------------------------------------------------------
    def ingest(self, payload: dict[str, Any], workflow: str = "", extra_provenance: dict | None = None) -> bool:
        """Store a worker's result payload; returns False when the key was already stored."""
        if self.readonly:
            raise StoreError(f"result store {self._shown()} was opened read-only")
        key = payload["key"]
        if self.has(key):
            return False
        atoms = decode_atoms(payload["atoms"])
        arrays = {k: np.asarray(v).tolist() for k, v in atoms.arrays.items() if k not in _ASE_ARRAYS}
        for k in arrays:
            del atoms.arrays[k]
        forces = None if payload.get("forces") is None else np.asarray(payload["forces"], dtype=float)
        atoms.calc = SinglePointCalculator(atoms, energy=float(payload["energy"]), forces=forces)
        spec = payload["spec"]
        prov = dict(payload.get("provenance") or {}) | (extra_provenance or {})
        data = {"spec": spec, "provenance": prov, "arrays": arrays, "extra": payload.get("extra") or {},
                "names": {"task": str(payload.get("name", "")), "workflow": str(workflow)}}
        if payload.get("mo"):
            data["mo"] = payload["mo"]
        kvp = {
            "calc_key": key, "task": _kv_text(str(payload.get("name", ""))), "workflow": _kv_text(str(workflow)),
            "backend": str(spec.get("backend", "")), "method": str(spec.get("method", "")),
            "calc_task": str(spec.get("task", "")), "converged": bool(payload.get("converged", True)),
            "wall_time": float(payload.get("wall_time") or 0.0),
        }
        try:
            with self._lock(1):
                if self.has(key):
                    return False
                with self._guard("writing"):
                    self.db.write(atoms, key_value_pairs=kvp, data=data)
        except HetflowError:
            raise
        except Exception as exc:  # noqa: BLE001 - a concurrent writer stored the same key first
            if self._is_duplicate(exc) and self.has(key):
                return False
            raise StoreError(_store_message(self._shown(), "writing", exc)) from exc
        return True

    @staticmethod
    def _is_duplicate(exc: Exception) -> bool:
        text = f"{type(exc).__name__} {exc}".lower()
        return "unique" in text or "duplicate" in text or "integrity" in text


def _existing_store(path: Path) -> None:
    """A store a reading command opens exists and is a regular file (nothing is created)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"no result store at {path} (nothing stored yet: run or submit the workflow "
                         "first)") from None
    except OSError as exc:
        raise StoreError(f"cannot open result store {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"result store {path} is not a regular file")


def _readonly_connector(path: Path):
    """An ``ase.db`` connection factory opening ``path`` read-only (SQLite ``mode=ro``)."""
    import sqlite3
    from urllib.parse import quote

    uri = f"file:{quote(str(path.resolve()))}?mode=ro"

    def connect():
        return sqlite3.connect(uri, uri=True, timeout=20)

    return connect


def _kv_text(text: str) -> str:
    """A name as an ASE key-value string: ASE refuses strings that read as a number or a
    boolean ("1", "nan", "True"), so those — and names starting with "#" — get a "#" prefix
    (the exact name is kept in the row's data as well)."""
    from ase.db.core import convert_str_to_int_float_bool_or_str

    if text.startswith("#") or not isinstance(convert_str_to_int_float_bool_or_str(text), str):
        return "#" + text
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _store_detail(exc: BaseException) -> str:
    """The first line of a store error, with disk-full errors said so."""
    text = _first_line(exc)
    low = f"{text} {getattr(exc, 'strerror', '') or ''}".lower()
    if "disk is full" in low or "no space left" in low or "quota" in low \
            or getattr(exc, "errno", None) in (28, 122):
        return f"disk full (or quota exceeded): {text}"
    return text


def _store_message(shown: str, action: str, exc: BaseException) -> str:
    text = _first_line(exc)
    detail = _store_detail(exc)
    low = text.lower()
    if detail.startswith("disk full"):
        return f"result store {shown}: {detail} (while {action})"
    if "malformed" in low or "not a database" in low or "disk i/o error" in low:
        return (f"result store {shown} is damaged ({text}); move it aside and rerun — results still "
                f"in the work directory are ingested again")
    if "locked" in low:
        return f"result store {shown} is locked by another process ({text})"
    return f"result store {shown}: {action} failed: {text}"


def _read_owner(fd: int) -> dict | None:
    try:
        raw = os.pread(fd, 4096, 0)
        d = json.loads(raw.decode()) if raw.strip() else None
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None


def _write_owner(fd: int, owner: dict | None) -> None:
    try:
        os.ftruncate(fd, 0)
        if owner:
            os.pwrite(fd, json.dumps(owner).encode(), 0)
    except OSError:
        pass  # the owner record is informative; the flock is what locks
