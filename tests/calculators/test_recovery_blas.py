"""SCF recovery ladder and the OpenBLAS worker."""

from __future__ import annotations

import os

import numpy as np
import pytest

from hetflow.calculators import CalcSpec, run_calculation
from hetflow.calculators.blas import choose_blas, find_openblas
from hetflow.errors import ConvergenceError, InputError


@pytest.fixture(scope="module")
def reference(cluster):
    return run_calculation(cluster, CalcSpec(method="GFN2-xTB"))


def test_iteration_limit_3_is_recovered_by_the_ladder(cluster, reference):
    r = run_calculation(cluster, CalcSpec(method="GFN2-xTB", settings={"scf_max_iter": 3}))
    assert r.converged
    assert "not converged" in r.recovery[0] and "mixer_damping" in r.recovery[0]
    assert r.recovery[-1].startswith("xtb: converged with")
    assert r.energy == pytest.approx(reference.energy, abs=1e-5)


@pytest.mark.parametrize("step", ["mixer_damping", "hot_then_cold", "other_guess"])
def test_each_ladder_step_recovers_at_the_requested_temperature(cluster, reference, step):
    r = run_calculation(cluster, CalcSpec(method="GFN2-xTB", settings={"scf_max_iter": 3, "recovery": [step]}))
    assert len(r.recovery) == 2 and step in r.recovery[1]
    # the hot step re-converges at 300 K, so every step ends on the same state
    assert r.energy == pytest.approx(reference.energy, abs=1e-5)


def test_without_ladder_the_failure_is_reported(cluster):
    with pytest.raises(ConvergenceError, match="did not converge.*3 cycles") as exc:
        run_calculation(cluster, CalcSpec(method="GFN2-xTB", settings={"scf_max_iter": 3, "recovery": False}))
    assert "\n" not in str(exc.value)


@pytest.mark.skipif(find_openblas() is None, reason="no system OpenBLAS installed")
def test_default_runs_in_openblas_worker_with_same_energy(cluster):
    from hetflow.calculators._worker import worker_info

    choice = choose_blas({"threads": 1})
    assert choice.use_worker and choice.preload == find_openblas()
    info = worker_info(choice.preload, 1)
    assert info["pid"] != os.getpid() and info["OMP_NUM_THREADS"] == "1"
    assert any(os.path.realpath(p) == os.path.realpath(choice.preload) for p in info["blas_libraries"])

    fast = run_calculation(cluster, CalcSpec(method="GFN1-xTB", settings={"threads": 1}))
    bundled = run_calculation(cluster, CalcSpec(method="GFN1-xTB", settings={"blas": "bundled", "threads": 1}))
    assert "preloaded in a worker" in fast.versions["blas"]
    assert "bundled" in bundled.versions["blas"]
    assert fast.energy == pytest.approx(bundled.energy, abs=1e-6)
    np.testing.assert_allclose(fast.forces, bundled.forces, atol=1e-6)


def test_blas_setting_errors():
    with pytest.raises(InputError, match="neither 'auto'"):
        choose_blas({"blas": "/nonexistent/libfoo.so"})
    with pytest.raises(InputError, match="threads"):
        choose_blas({"threads": 0})
