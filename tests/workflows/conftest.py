"""Fixtures: a real PostgreSQL server and a real single-node Slurm, each started once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from ase.build import molecule

from hetflow.calculators import CalcSpec
from pg_fixtures import pg_store_url, postgres_url  # noqa: F401 - fixtures shared with tests/hardening


@pytest.fixture
def fake_spec() -> CalcSpec:
    """The FakeCalculator (orchestration tests only)."""
    return CalcSpec(backend="fake", method="LJ")


@pytest.fixture
def mols():
    return {n: molecule(n) for n in ("H2O", "CH4", "NH3", "C2H6")}


@pytest.fixture(scope="session")
def slurm_env():
    """SLURM_CONF of a running single-node Slurm: an existing one (SLURM_CONF set and
    answering) or one started here for the session."""
    import slurm_cluster

    conf = os.environ.get("SLURM_CONF")
    if conf and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0:
        yield {"SLURM_CONF": conf}
        return
    d = Path(tempfile.mkdtemp(prefix="hetflow-slurm-"))
    try:
        env = slurm_cluster.start(d)
    except slurm_cluster.SlurmUnavailable as exc:
        pytest.skip(f"no local Slurm: {exc}")
    old = os.environ.get("SLURM_CONF")
    os.environ.update(env)
    yield env
    slurm_cluster.stop(d)
    time.sleep(1)
    shutil.rmtree(d, ignore_errors=True)
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
