"""MO data as compressed npz beside the result: exact read-back at the stored precision,
summaries in JSON and the store, Mulliken projections still working (real tblite MOs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hetflow.analysis.projections import domain_fractions, element_fractions
from hetflow.calculators import CalcSpec, MOData, run_calculation
from hetflow.calculators.mo_io import load_full, mo_reference, read_mo_npz, write_mo_npz
from hetflow.errors import InputError


@pytest.fixture(scope="module")
def sp(cluster):
    """Real GFN1-xTB single point with MO data on the 36-atom labelled CsPbCl3 cluster."""
    res = run_calculation(cluster, CalcSpec(backend="tblite", method="GFN1-xTB", want_mo=True))
    assert res.mo.coefficients is not None and res.mo.overlap is not None
    return res


def test_npz_reads_back_identical_to_stored_precision(sp, tmp_path):
    mo = sp.mo
    path = write_mo_npz(mo, tmp_path / "mo.npz")
    back = read_mo_npz(path)
    assert back.eigenvalues.dtype == np.float64 and np.array_equal(back.eigenvalues, mo.eigenvalues)
    assert np.array_equal(back.occupations, mo.occupations)
    assert back.coefficients.dtype == np.float32
    assert np.array_equal(back.coefficients, np.asarray(mo.coefficients).astype(np.float32))
    assert back.overlap.shape == mo.overlap.shape and np.array_equal(back.overlap, back.overlap.T)
    iu = np.triu_indices(len(mo.overlap))
    assert np.array_equal(back.overlap[iu], np.asarray(mo.overlap)[iu].astype(np.float32))
    assert np.array_equal(back.ao_atom, mo.ao_atom)
    # float32 storage moves Mulliken fractions by far less than the 0.1 % a report prints
    a, b = domain_fractions(mo, sp.atoms), domain_fractions(back, sp.atoms)
    el_a, el_b = element_fractions(mo, sp.atoms), element_fractions(back, sp.atoms)
    for x, y in ((a, b), (el_a, el_b)):
        assert set(x) == set(y)
        assert max(float(np.abs(x[g] - y[g]).max()) for g in x) < 1e-5
    # ≥ 5× smaller than the JSON text it replaces
    legacy = len(json.dumps(mo.to_dict()))
    assert legacy / path.stat().st_size > 5


def test_summary_from_json_reference(sp, tmp_path):
    mo = sp.mo
    path = write_mo_npz(mo, tmp_path / "sp.mo.npz")
    fr = domain_fractions(mo, sp.atoms)
    ref = json.loads(json.dumps(mo_reference(mo, path, fr)))
    assert "coefficients" not in ref and "overlap" not in ref
    assert ref["nmo"] == len(mo.eigenvalues) and ref["gap_eV"] > 0
    summ = MOData.from_dict(ref)
    assert summ.coefficients is None and summ.data_file == str(path)
    assert np.array_equal(summ.eigenvalues, mo.eigenvalues)  # JSON keeps float64 exactly
    # the stored domain fractions are used as they are ...
    got = domain_fractions(summ, sp.atoms)
    assert max(float(np.abs(got[g] - fr[g]).max()) for g in fr) < 2e-6
    # ... another grouping loads C and S from the file and does the Mulliken sum
    el = element_fractions(summ, sp.atoms)
    want = element_fractions(mo, sp.atoms)
    assert max(float(np.abs(el[g] - want[g]).max()) for g in want) < 1e-5
    assert summ.full().coefficients.shape == mo.coefficients.shape


def test_loader_refuses_missing_or_foreign_files(sp, tmp_path):
    mo = sp.mo
    ref = mo_reference(mo, tmp_path / "absent.npz")
    with pytest.raises(InputError, match="not found"):
        load_full(MOData.from_dict(ref))
    other = MOData(eigenvalues=np.asarray(mo.eigenvalues) + 0.1, occupations=mo.occupations,
                   coefficients=mo.coefficients, overlap=mo.overlap, ao_atom=mo.ao_atom)
    p = write_mo_npz(other, tmp_path / "other.npz")
    with pytest.raises(InputError, match="does not belong"):
        load_full(MOData.from_dict(mo_reference(mo, p)))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not readable"):
        read_mo_npz(tmp_path / "junk.npz")


def test_task_dir_and_store_keep_the_summary(tmp_path):
    """A worker writes mo-<key>.npz beside result.json; the store row has no C and S, and
    ``stored.mo.full()`` reads them back bit-identical at float32."""
    from ase.build import molecule

    from hetflow.calculators import calc_key
    from hetflow.workflows._taskdir import TaskDir, read_json
    from hetflow.workflows._worker import run_task_dir
    from hetflow.workflows.store import ResultStore

    a = molecule("C6H6")
    a.set_array("domain", np.array(["perovskite"] * 6 + ["chalcohalide"] * 6))
    spec = CalcSpec(backend="fake", method="LJ", want_mo=True)
    key = calc_key(a, spec)
    td = TaskDir.for_task(tmp_path / "work", "benzene")
    td.prepare("benzene", key, a, spec)
    assert run_task_dir(td.root) == "done"
    payload = read_json(td.result)
    ref = payload["mo"]
    assert set(ref) >= {"eigenvalues", "occupations", "data_file"} and "coefficients" not in ref
    assert ref["data_file"] == str((td.root / f"mo-{key}.npz").resolve())
    store = ResultStore(tmp_path / "r.db")
    assert store.ingest(payload)
    got = store.get(key)
    assert got.mo.coefficients is None and len(got.mo.eigenvalues) == 12
    from hetflow.calculators.fake import _toy_mo

    full = got.mo.full()
    assert np.array_equal(full.coefficients, _toy_mo(a).coefficients.astype(np.float32))
