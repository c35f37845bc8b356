"""Task graph: keys, dependencies, cycles (FakeCalculator for orchestration only)."""

import pytest
from ase.build import molecule

from hetflow.calculators import CalcSpec, calc_key
from hetflow.errors import WorkflowError
from hetflow.workflows.graph import Summary, Workflow


def test_cycle_is_reported_with_its_path(fake_spec):
    wf = Workflow("cyc")
    wf.add_calc("a", molecule("H2O"), fake_spec, start_from="c")
    wf.add_calc("b", molecule("H2O"), fake_spec, start_from="a")
    wf.add_calc("c", molecule("H2O"), fake_spec, start_from="b")
    with pytest.raises(WorkflowError, match=r"dependency cycle: (a|b|c) -> .* -> \1"):
        wf.validate()


def test_unknown_dependency_and_duplicates(fake_spec):
    wf = Workflow()
    wf.add_calc("a", None, fake_spec, start_from="nope")
    with pytest.raises(WorkflowError, match="a depend on unknown task.*nope"):
        wf.validate()
    wf2 = Workflow()
    wf2.add_calc("a", molecule("H2O"), fake_spec)
    with pytest.raises(WorkflowError, match="duplicate task name 'a'"):
        wf2.add_calc("a", molecule("CH4"), fake_spec)
    with pytest.raises(WorkflowError, match="needs a structure or start_from"):
        wf2.add_calc("b", None, fake_spec)


def test_static_key_is_calc_key_and_dependent_key_waits(fake_spec):
    wf = Workflow()
    w = molecule("H2O")
    wf.add_calc("w", w, fake_spec)
    wf.add_calc("w2", None, fake_spec.replace(task="relax"), start_from="w")
    assert wf.task("w").static_key() == calc_key(w, fake_spec)
    assert wf.task("w2").static_key() is None
    assert wf.validate() == ["w", "w2"]


def test_start_atoms_keeps_labels_and_checks_size(fake_spec):
    import numpy as np

    own = molecule("H2O")
    own.set_array("domain", np.array(["a", "b", "c"]))
    parent = molecule("H2O")
    parent.positions += 0.1
    wf = Workflow()
    wf.add_calc("p", parent, fake_spec)
    wf.add_calc("c", own, fake_spec, start_from="p")
    out = wf.task("c").start_atoms(parent)
    assert np.allclose(out.positions, parent.positions)
    assert list(out.arrays["domain"]) == ["a", "b", "c"]
    with pytest.raises(WorkflowError, match="3 atoms but parent"):
        wf.task("c").start_atoms(molecule("CH4"))


def test_summary_text():
    s = Summary(cached=12, run=3)
    assert str(s) == "12 cached, 3 run" and s.ok
    s.failed = 1
    assert str(s).endswith("1 failed") and not s.ok
