"""Fixtures of the hardening tests (helpers live in hardening_helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def fake_spec():
    """The FakeCalculator (orchestration tests only)."""
    from hetflow.calculators import CalcSpec

    return CalcSpec(backend="fake", method="LJ")
