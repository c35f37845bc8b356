"""The backend registry: ``CalcSpec.backend`` name → backend object (:class:`~hetflow.calculators.base.Backend`).

The only place that knows backend names.  Adding a backend is one module that exports one
object implementing the protocol, plus one line in :data:`BACKENDS`.

Entries are ``"module:attribute"`` strings, imported on first use (:func:`importlib.import_module`):
:class:`~hetflow.calculators.base.CalcSpec` validates its method against the backend object while the
backend modules import ``CalcSpec`` — a static import here would be a circle — and a spec names
only the module of its own backend (heavy third-party packages stay lazy inside the modules).
"""

from __future__ import annotations

import importlib
from typing import Any

from hetflow.errors import InputError

#: name → "module:object", in the order the CLI and error messages list them
BACKENDS: dict[str, str] = {
    "tblite": "hetflow.calculators.xtb:TBLITE",
    "xtb-python": "hetflow.calculators.xtb:XTB_PYTHON",
    "cp2k": "hetflow.calculators.cp2k:CP2K",
    "chgnet": "hetflow.calculators.mlip:CHGNET",
    "sevennet": "hetflow.calculators.mlip:SEVENNET",
    "fake": "hetflow.calculators.fake:FAKE",
}

#: backends for tests of the orchestration only: not offered by the CLI
TEST_ONLY: tuple[str, ...] = ("fake",)

_LOADED: dict[str, Any] = {}


def backend(name: str) -> Any:
    """The backend object (a :class:`hetflow.calculators.base.Backend`) registered as ``name``;
    InputError for an unknown name."""
    b = _LOADED.get(name)
    if b is not None:
        return b
    if not isinstance(name, str) or name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module, _, attr = BACKENDS[name].partition(":")
    b = getattr(importlib.import_module(module), attr)
    if b.name != name:  # pragma: no cover - a wrong registry line
        raise RuntimeError(f"registry entry {name!r} points at backend {b.name!r}")
    _LOADED[name] = b
    return b


def names(include_test_only: bool = True) -> tuple[str, ...]:
    """Registered backend names (the CLI's ``--backend`` choices without the test-only ones)."""
    return tuple(n for n in BACKENDS if include_test_only or n not in TEST_ONLY)


def prerelax_backend(spelling: str) -> Any | None:
    """The backend a ``CalcSpec.prerelax`` spelling names (case-insensitive), or None."""
    wanted = str(spelling).strip().lower()
    for n in BACKENDS:
        b = backend(n)
        if wanted in b.prerelax_aliases:
            return b
    return None


def prerelax_names() -> tuple[str, ...]:
    """Names of the backends that can pre-relax (``CalcSpec.prerelax``, the CLI's ``--prerelax``)."""
    return tuple(n for n in BACKENDS if backend(n).prerelax_aliases)


def ase_relaxed_names() -> tuple[str, ...]:
    """Names of the backends whose relaxations :mod:`hetflow.calculators.relax` drives."""
    return tuple(n for n in BACKENDS if backend(n).relaxes_with_ase)
