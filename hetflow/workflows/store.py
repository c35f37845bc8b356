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

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from hetflow.calculators.base import CalcSpec, MOData
from hetflow.errors import WorkflowError
from hetflow.workflows._taskdir import decode_atoms

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


class ResultStore:
    """Cached results keyed by content key.  ``location``: SQLite path or postgresql:// URL."""

    def __init__(self, location: str | Path):
        import ase.db

        self.location = str(location)
        self.is_postgres = _is_url(self.location)
        if not self.is_postgres:
            path = Path(self.location)
            if path.suffix != ".db":
                raise WorkflowError(f"store path must end in .db (SQLite) or be a postgresql:// URL: {location}")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WorkflowError(f"cannot create store directory {path.parent}: {exc.strerror or exc}") from None
        try:
            self.db = ase.db.connect(self.location, type="postgresql" if self.is_postgres else "db")
            self._ensure_unique_index()
        except ImportError as exc:
            raise WorkflowError(
                f"PostgreSQL store needs psycopg2-binary and ase-db-backends ({exc})") from exc
        except WorkflowError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection problems are user-fixable
            raise WorkflowError(f"cannot open result store {self._shown()}: {str(exc).splitlines()[0]}") from exc

    def _shown(self) -> str:
        if self.is_postgres and "@" in self.location:  # hide a password
            scheme, rest = self.location.split("://", 1)
            return f"{scheme}://…@{rest.split('@', 1)[1]}"
        return self.location

    # -- low level ---------------------------------------------------------------
    def _ensure_unique_index(self) -> None:
        """Create the schema and the unique index once, serialised across processes."""
        with self._init_lock():
            self.db.count()  # creates the schema
            con = self.db._connect()
            try:
                cur = con.cursor()
                cur.execute(_UNIQUE_INDEX)
                con.commit()
            finally:
                con.close()

    @contextmanager
    def _init_lock(self, lock_id: int = 0):
        """Cross-process exclusive lock: a PostgreSQL advisory lock or an flock on a side file.

        Writes take it too: ASE's PostgreSQL backend reads the new row id from the shared
        sequence, which is only correct while no other session inserts at the same time.
        """
        if self.is_postgres:
            import psycopg2

            con = psycopg2.connect(self.location)
            try:
                con.autocommit = True
                con.cursor().execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID + lock_id,))
                yield
            finally:
                con.close()  # releases the session lock
        else:
            import fcntl

            with open(f"{self.location}.hetflow-lock{lock_id}", "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    # -- queries -----------------------------------------------------------------
    def has(self, key: str) -> bool:
        return self.db.count(calc_key=key) > 0

    def keys(self) -> set[str]:
        return {row.calc_key for row in self.db.select("calc_key")}

    def count(self) -> int:
        return self.db.count("calc_key")

    def get(self, key: str) -> StoredResult | None:
        for row in self.db.select(calc_key=key, limit=1):
            return self._from_row(row)
        return None

    def rows(self, workflow: str | None = None) -> Iterator[StoredResult]:
        sel = {"workflow": workflow} if workflow else {}
        for row in self.db.select("calc_key", sort="id", **sel):
            yield self._from_row(row)

    def _from_row(self, row) -> StoredResult:
        atoms = row.toatoms()
        data = row.data or {}
        for name, values in (data.get("arrays") or {}).items():
            atoms.set_array(name, np.asarray(values))
        forces = row.get("forces")
        mo = data.get("mo")
        return StoredResult(
            key=row.calc_key, name=row.get("task", ""), energy=float(row.energy),
            forces=None if forces is None else np.asarray(forces), atoms=atoms,
            converged=bool(row.get("converged", True)), spec=CalcSpec.from_dict(dict(data["spec"])),
            provenance=dict(data.get("provenance") or {}),
            mo=None if not mo else MOData.from_dict(dict(mo)), row_id=row.id,
        )

    # -- ingestion ---------------------------------------------------------------
    def ingest(self, payload: dict[str, Any], workflow: str = "", extra_provenance: dict | None = None) -> bool:
        """Store a worker's result payload; returns False when the key was already stored."""
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
        data = {"spec": spec, "provenance": prov, "arrays": arrays, "extra": payload.get("extra") or {}}
        if payload.get("mo"):
            data["mo"] = payload["mo"]
        kvp = {
            "calc_key": key, "task": str(payload.get("name", "")), "workflow": str(workflow),
            "backend": str(spec.get("backend", "")), "method": str(spec.get("method", "")),
            "calc_task": str(spec.get("task", "")), "converged": bool(payload.get("converged", True)),
            "wall_time": float(payload.get("wall_time") or 0.0),
        }
        try:
            with self._init_lock(1):
                if self.has(key):
                    return False
                self.db.write(atoms, key_value_pairs=kvp, data=data)
        except Exception as exc:  # noqa: BLE001 - a concurrent writer stored the same key first
            if self._is_duplicate(exc) and self.has(key):
                return False
            raise
        return True

    @staticmethod
    def _is_duplicate(exc: Exception) -> bool:
        text = f"{type(exc).__name__} {exc}".lower()
        return "unique" in text or "duplicate" in text or "integrity" in text
