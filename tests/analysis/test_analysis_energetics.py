"""Exchange/reaction energetics on hand-computable numbers, and the composition checks."""

import numpy as np
import pytest
from ase import Atoms
from ase import units as u

from hetflow.analysis import energetics as en
from hetflow.analysis.units import EV_TO_KCAL_PER_MOL, EV_TO_KJ_PER_MOL, from_ev, to_ev
from hetflow.errors import InputError


def model(symbols):
    return Atoms(symbols, positions=np.arange(3 * len(symbols), dtype=float).reshape(-1, 3))


PRISTINE = ["Cs", "Pb", "Cl", "Cl", "Cl", "Cs", "Pb", "Cl", "Cl", "Cl"]
STEP1 = ["Cs", "Pb", "I", "I", "Cl", "Cs", "Pb", "Cl", "Cl", "Cl"]  # 2 exchanged
STEP2 = ["Cs", "Pb", "I", "I", "I", "Cs", "Pb", "I", "I", "I"]  # 6 exchanged in total
REF = en.Reference("molecule", {"Cl": -10.0, "I": -8.0})


def test_units_from_ase():
    assert EV_TO_KCAL_PER_MOL == pytest.approx(1 / (u.kcal / u.mol))
    assert EV_TO_KCAL_PER_MOL == pytest.approx(23.0605, abs=1e-3)
    assert EV_TO_KJ_PER_MOL == pytest.approx(96.485, abs=1e-2)
    assert to_ev(from_ev(1.234, "kJ/mol"), "kJ/mol") == pytest.approx(1.234)
    with pytest.raises(InputError, match="unknown energy unit"):
        from_ev(1.0, "hartree")


def test_exchange_energy_by_hand():
    # x = 2: [(-99 + 1*(-10)) - (-100 + 1*(-8))] / 2 = -0.5 eV per halide
    step = en.exchange_step("N=1", (model(PRISTINE), -100.0), (model(STEP1), -99.0), REF)
    assert step.x == 2
    assert step.per_halide == pytest.approx(-0.5)
    assert step.total == pytest.approx(-1.0)
    row = step.as_dict("kcal/mol")
    assert row["ΔE per halide (kcal/mol)"] == pytest.approx(-0.5 * 23.0605, abs=1e-3)
    # a less stable child flips the sign
    assert en.exchange_step("x", (model(PRISTINE), -100.0), (model(STEP1), -97.0), REF).per_halide > 0


def test_reference_choice_changes_energy_by_salt_difference():
    bulk = en.Reference("bulk", {"Cl": -10.5, "I": -8.0})
    a = en.exchange_energy(-100.0, -99.0, 2, REF)
    b = en.exchange_energy(-100.0, -99.0, 2, bulk)
    # per halide, the reference enters as (E_PbCl2 - E_PbI2)/2
    assert b - a == pytest.approx(-0.25)


def test_stepwise_and_cumulative_are_consistent():
    chain = {"pristine": (model(PRISTINE), -100.0), "N=1": (model(STEP1), -99.0), "N=2": (model(STEP2), -97.5)}
    steps = en.stepwise_exchange_energies(chain, REF)
    cum = en.cumulative_exchange_energies(chain, REF)
    assert [s.x for s in steps] == [2, 4]
    assert [s.parent for s in steps] == ["pristine", "N=1"]
    assert [c.x for c in cum] == [2, 6]
    # second step by hand: [(-97.5 + 2*(-10)) - (-99 + 2*(-8))] / 4 = (-117.5 + 115)/4
    assert steps[1].per_halide == pytest.approx(-2.5 / 4)
    # cumulative total = sum of step totals; cumulative per halide = weighted mean
    assert cum[1].total == pytest.approx(steps[0].total + steps[1].total)
    assert cum[1].per_halide == pytest.approx((2 * steps[0].per_halide + 4 * steps[1].per_halide) / 6)


def test_against_one_parent_and_relative_to_baseline():
    parent = ("d", (model(PRISTINE), -100.0))
    kids = {"random": (model(STEP1), -99.0), "ordered": (model(STEP1[:2] + ["Cl", "I", "I"] + STEP1[5:]), -99.4)}
    res = en.exchange_energies_against(parent, kids, REF)
    rel = en.relative_to(res, "random")
    assert rel["random"] == 0.0
    assert rel["ordered"] == pytest.approx(-0.4)
    assert en.relative_to(res, "random", per="halide")["ordered"] == pytest.approx(-0.2)
    with pytest.raises(InputError, match="baseline 'nope'"):
        en.relative_to(res, "nope")
    table = en.markdown_table(en.exchange_rows(res))
    assert table.count("\n") == 3 and "ordered" in table


def test_general_halide_pair():
    br = ["Cs", "Pb", "Br", "Br", "Br"]
    i1 = ["Cs", "Pb", "I", "Br", "Br"]
    ref = en.Reference("bulk", {"Br": -9.0, "I": -8.0})
    s = en.exchange_step("1", (model(br), -50.0), (model(i1), -49.0), ref, "Br", "I")
    # [(-49 + 0.5*(-9)) - (-50 + 0.5*(-8))] / 1 = 0.5
    assert s.x == 1 and s.per_halide == pytest.approx(0.5)
    with pytest.raises(InputError, match="no PbCl2 energy"):
        en.exchange_step("1", (model(PRISTINE), -50.0), (model(STEP1), -49.0), ref, "Cl", "I")


@pytest.mark.parametrize(
    "child, msg",
    [
        (["Cs", "Pb", "Cl", "Cl", "Cl", "Cs", "Pb", "Cl", "Cl", "Cl"], "not a Cl→I exchange"),  # nothing
        (["Cs", "Pb", "I", "Br", "Cl", "Cs", "Pb", "Cl", "Cl", "Cl"], "not a Cl→I exchange"),  # Br appears
        (["Cs", "Pb", "I", "I", "Cl", "Cs", "Pb", "Cl", "Cl"], "not a Cl→I exchange"),  # atom lost
        (["Pb", "Cs", "I", "I", "Cl", "Cs", "Pb", "Cl", "Cl", "Cl"], "site 0 changes Cs→Pb"),  # reordered
    ],
)
def test_inconsistent_compositions_refused(child, msg):
    with pytest.raises(InputError, match=msg):
        en.count_exchanged(model(PRISTINE), model(child))


def test_reordered_child_accepted_by_composition_only():
    child = ["Pb", "Cs", "I", "I", "Cl", "Cs", "Pb", "Cl", "Cl", "Cl"]
    assert en.count_exchanged(model(PRISTINE), model(child), by_site=False) == 2


def test_reference_from_structures_checks_stoichiometry():
    ref = en.Reference.from_structures("molecule", {"Cl": (model(["Pb", "Cl", "Cl"]), -10.0)})
    assert ref.energy("Cl") == -10.0
    bulk = en.Reference.from_structures("bulk", {"I": (model(["Pb"] * 4 + ["I"] * 8), -40.0)})
    assert bulk.energy("I") == pytest.approx(-10.0)
    with pytest.raises(InputError, match="must be one molecule"):
        en.Reference.from_structures("molecule", {"Cl": (model(["Pb", "Pb", "Cl", "Cl", "Cl", "Cl"]), -1.0)})
    with pytest.raises(InputError, match=r"is not \(PbCl2\)_n"):
        en.Reference.from_structures("bulk", {"Cl": (model(["Pb", "Cl", "Cl", "Cl"]), -1.0)})
    with pytest.raises(InputError, match="unknown reference kind"):
        en.Reference("gas", {"Cl": 1.0})


def test_zif_reaction_energy_and_element_balance():
    frag = model(["Cs", "Pb", "I", "I", "I"])
    zif = model(["Zn", "N", "N", "C", "H"])
    prod = model(["Cs", "Pb", "I", "I", "I", "Zn", "N", "N", "C", "H"])
    assert en.zif_reaction_energy((prod, -31.0), (frag, -10.0), (zif, -20.0)) == pytest.approx(-1.0)
    bad = model(["Cs", "Pb", "I", "I", "Zn", "N", "N", "C", "H", "H"])
    with pytest.raises(InputError, match="products have extra 1 H; products lack 1 I"):
        en.zif_reaction_energy((bad, -31.0), (frag, -10.0), (zif, -20.0))


def test_alpha_delta_per_formula_unit():
    alpha = model(["Cs", "Pb", "I", "I", "I"])
    delta = model(["Cs", "Pb", "I", "I", "I"] * 4)
    assert en.formula_units(delta) == 4
    # -10/1 - (-41/4) = 0.25 eV/f.u.: delta more stable
    assert en.alpha_delta_difference((alpha, -10.0), (delta, -41.0)) == pytest.approx(0.25)
    with pytest.raises(InputError, match="whole number of CsPbI3"):
        en.formula_units(model(["Cs", "Pb", "I", "I"]))
    with pytest.raises(InputError, match="not finite"):
        en.energy_per_formula_unit((alpha, float("nan")))
