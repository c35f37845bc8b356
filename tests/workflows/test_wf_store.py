"""Result store on ASE db: SQLite file and a real PostgreSQL server, same code."""

import multiprocessing as mp
import subprocess

import numpy as np
import pytest
from ase.build import molecule

from hetflow.calculators import CalcSpec, calc_key
from hetflow.calculators.fake import FakeCalculator
from hetflow.errors import WorkflowError
from hetflow.workflows._worker import result_payload
from hetflow.workflows.store import ResultStore


def _payloads(n=4, want_mo=False):
    spec = CalcSpec(backend="fake", method="LJ", want_mo=want_mo)
    out = []
    for name in ["H2O", "CH4", "NH3", "C2H6", "CO2", "N2"][:n]:
        a = molecule(name)
        a.set_array("domain", np.array([f"d{i % 2}" for i in range(len(a))]))
        res = FakeCalculator().run(a, spec)
        out.append(result_payload(name, calc_key(a, spec), res, 100.0, 101.5))
    return out


def _check_roundtrip(store):
    payloads = _payloads(3, want_mo=True)
    assert [store.ingest(p, workflow="wf") for p in payloads] == [True] * 3
    assert [store.ingest(p, workflow="wf") for p in payloads] == [False] * 3
    assert store.count() == 3
    got = store.get(payloads[1]["key"])
    assert got.name == "CH4" and got.atoms.get_chemical_formula() == "CH4"
    assert got.energy == pytest.approx(payloads[1]["energy"], abs=1e-12)
    assert np.allclose(got.forces, payloads[1]["forces"])
    assert list(got.atoms.arrays["domain"]) == ["d0", "d1", "d0", "d1", "d0"]
    assert got.mo is not None and len(got.mo.eigenvalues) == 5
    prov = got.provenance
    assert prov["start"] == 100.0 and prov["end"] == 101.5 and prov["host"]
    assert {"hetflow", "ase"} <= set(prov["versions"])
    assert got.spec == CalcSpec(backend="fake", method="LJ", want_mo=True)
    assert store.keys() == {p["key"] for p in payloads}
    assert [r.name for r in store.rows("wf")] == ["H2O", "CH4", "NH3"]
    assert list(store.rows("other")) == []


def test_sqlite_roundtrip_and_idempotent(tmp_path):
    _check_roundtrip(ResultStore(tmp_path / "r.db"))


def test_sqlite_browsable_with_ase_db(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    for p in _payloads(2):
        store.ingest(p, workflow="wf")
    out = subprocess.run(["ase", "db", str(tmp_path / "r.db"), "workflow=wf", "-c", "formula,energy,calc_key"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "CH4" in out.stdout and "H2O" in out.stdout and "Rows: 2" in out.stdout


def _writer(location, payloads, q):
    store = ResultStore(location)
    q.put(sum(store.ingest(p, workflow="wf") for p in payloads))


def _concurrent(location):
    payloads = _payloads(6)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(location, payloads, q)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    written = sum(q.get(timeout=5) for _ in procs)
    store = ResultStore(location)
    assert written == 6  # every key written by exactly one writer
    assert store.count() == 6
    assert sorted(r.key for r in store.rows()) == sorted(p["key"] for p in payloads)


def test_sqlite_concurrent_writers_never_duplicate(tmp_path):
    _concurrent(str(tmp_path / "c.db"))


def test_unique_index_rejects_raw_duplicate(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    p = _payloads(1)[0]
    store.ingest(p)
    with pytest.raises(Exception, match="(?i)unique"):
        store.db.write(molecule("H2O"), calc_key=p["key"])


def test_bad_locations(tmp_path):
    with pytest.raises(WorkflowError, match="must end in .db"):
        ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(WorkflowError, match="cannot open result store postgresql://…@localhost:1/"):
        ResultStore("postgresql://u:secret@localhost:1/x")


def test_postgres_roundtrip(pg_store_url):
    _check_roundtrip(ResultStore(pg_store_url))


def test_postgres_concurrent_writers_never_duplicate(pg_store_url):
    _concurrent(pg_store_url)
