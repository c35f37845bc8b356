"""Issue 14, item 3: task names that sanitise alike get distinct task directories.

On main ``"a b"``, ``"a_b"`` and ``"a/b"`` (and two names sharing their first 64 characters)
shared one directory: the tasks overwrote each other's inputs and failed as "lost 3 times".
"""

from __future__ import annotations

from ase.build import molecule

from hardening_helpers import store_integrity
from hetflow.calculators.fake import FakeCalculator
from hetflow.workflows.executors import LocalExecutor
from hetflow.workflows.graph import Workflow
from hetflow.workflows.store import ResultStore

LONG = "x" * 64
NAMES = ["a b", "a_b", "a/b", "a\\b", "a:b", "a_b-0123456789", "task", "...", "", LONG + "1", LONG + "2",
         "ünïcödé", "H2O", "h2o"]


def test_colliding_names_each_get_their_own_directory_and_row(tmp_path, fake_spec):
    names = [n for n in NAMES if n]
    wf = Workflow("collide")
    mols = ["H2O", "CH4", "NH3", "CO2", "N2", "H2", "CO", "C2H6", "C2H4", "HCN", "H2O2", "CH3OH", "O2"]
    for n, m in zip(names, mols):
        wf.add_calc(n, molecule(m), fake_spec)
    db = tmp_path / "r.db"
    s = wf.run(ResultStore(db), LocalExecutor(workers=2), workdir=tmp_path / "w")
    assert (s.run, s.failed) == (len(names), 0), (str(s), s.failures)
    assert store_integrity(db) == len(names)
    dirs = sorted(p.name for p in (tmp_path / "w" / "tasks").iterdir())
    assert len(dirs) == len(names)
    store = ResultStore(db)
    by_name = {r.name: r for r in store.rows()}
    for n, m in zip(names, mols):  # each task's row holds its own molecule's energy
        assert by_name[n].atoms.get_chemical_formula() == molecule(m).get_chemical_formula()
        assert abs(by_name[n].energy - FakeCalculator().run(molecule(m), fake_spec).energy) < 1e-12
    # a rerun finds every result where it left it
    s2 = wf.run(ResultStore(db), LocalExecutor(workers=2), workdir=tmp_path / "w")
    assert (s2.cached, s2.run) == (len(names), 0)


def test_directory_mapping_is_one_to_one():
    import random

    from hetflow.workflows._taskdir import task_dirname

    rng = random.Random(14)
    alphabet = "aA_-. /\\:b0ü"
    names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 70))) for _ in range(5000)}
    names |= set(n for n in NAMES if n) | {task_dirname(n) for n in list(names)[:200]}
    dirs = {task_dirname(n) for n in names}
    assert len(dirs) == len(names)
    for d in dirs:
        assert d not in (".", "..") and "/" not in d and len(d) <= 64 and d == d.strip()
    assert task_dirname("H2O") == "H2O" and task_dirname("CH4_relax") == "CH4_relax"  # readable when safe


def test_names_that_read_as_numbers_are_stored(tmp_path, fake_spec):
    """Neighbour: ASE refuses key-value strings that read as numbers or booleans, so a task
    from ``001.xyz`` or a workflow named ``2024`` could not be stored."""
    names = ["001", "nan", "True", "1e5", "#hash", "inf"]
    mols = ["H2O", "CH4", "NH3", "CO2", "N2", "CO"]
    wf = Workflow("2024")
    for n, m in zip(names, mols):
        wf.add_calc(n, molecule(m), fake_spec)
    db = tmp_path / "r.db"
    s = wf.run(ResultStore(db), LocalExecutor(workers=1), workdir=tmp_path / "w")
    assert (s.run, s.failed) == (6, 0), (str(s), s.failures)
    assert sorted(r.name for r in ResultStore(db).rows("2024")) == sorted(names)
    assert store_integrity(db) == 6
