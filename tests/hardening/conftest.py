"""Fixtures of the hardening tests (helpers live in hardening_helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def fake_spec():
    """The FakeCalculator (orchestration tests only)."""
    from hetflow.calculators import CalcSpec

    return CalcSpec(backend="fake", method="LJ")


# the PostgreSQL server fixtures live with the workflow tests
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1] / "workflows"))
from pg_fixtures import pg_store_url, postgres_url  # noqa: E402,F401
