"""The one calculator protocol: :class:`CalcSpec` in, :class:`CalcResult` out.

A calculation is a pure function of ``(structure, CalcSpec)``.  That is what lets the
workflow layer cache, restart and run remotely with one mechanism: the content key of a
calculation is :func:`calc_key` of the structure and the spec.

Units: energies in eV, forces in eV/Å, positions in Å.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from ase import Atoms

from hetflow import validate  # the one validation layer (finite numbers, ranges, text)
from hetflow.calculators import mlip_models, registry
from hetflow.calculators.accelerate_options import accelerate_options
from hetflow.calculators.mo_io import MOData  # noqa: F401 - defined with its file format, re-exported
from hetflow.errors import InputError

Task = Literal["single_point", "relax"]

#: Version of the calculation code that enters every content key.  Bump it when a change
#: alters results of existing specs, so stale cached results are not reused.
CALC_CODE_VERSION = "1"


def canonical_method(backend: str, method: str | None) -> str:
    """Return the canonical spelling of ``method`` for ``backend`` or raise InputError.

    ``None`` means the backend's default method (the first of its ``methods``).
    """
    b = registry.backend(backend)
    if method is None:
        return b.methods[0]
    if not isinstance(method, str):
        raise InputError(f"method must be a string, got {method!r}")
    alias = b.method_aliases.get(method.strip().lower())
    if alias is not None:
        return alias
    wanted = method.strip().lower().replace("_", "-")
    for m in b.methods:
        if wanted in (m.lower(), m.lower().replace("-xtb", "")):
            return m
    raise InputError(
        f"unknown method {method!r} for backend {backend!r}; "
        f"choose one of {', '.join(b.methods)}"
    )


#: geometry optimisers of ``CalcSpec.optimizer`` (ASE's, and Sella in Cartesian coordinates)
OPTIMIZERS = ("FIRE", "LBFGS", "BFGS", "PreconLBFGS", "Sella")


@dataclass(frozen=True)
class CalcSpec:
    """What to compute and how.  Hashable and JSON-serialisable.

    Attributes
    ----------
    backend: ``"tblite"`` (default), ``"xtb-python"``, ``"cp2k"``, the machine-learned
        potentials ``"chgnet"`` and ``"sevennet"``, or ``"fake"`` (tests of the orchestration only).
    method: e.g. ``"GFN1-xTB"``, ``"GFN2-xTB"``, ``"PBE"``, ``"CHGNet-0.3.0"``, ``"7net-0"``;
        ``None`` (default) = the backend's default (GFN1-xTB for tblite, PBE for cp2k, …).
    task: ``"single_point"`` or ``"relax"``.
    charge: total charge in units of e.
    multiplicity: spin multiplicity 2S+1 (1 = closed shell).
    periodic: use periodic boundary conditions (the structure must carry a cell).
    fmax: force convergence for relaxations, eV/Å.
    max_steps: optimiser step limit for relaxations.
    optimizer: ``"FIRE"``, ``"LBFGS"``, ``"BFGS"``, ``"PreconLBFGS"`` or ``"Sella"`` (Cartesian).
    want_mo: also return molecular-orbital data (eigenvalues, occupations, coefficients,
        overlap or per-domain projections).
    settings: backend-specific settings as a tuple of ``(key, value)`` pairs (kept as a
        tuple so the spec stays hashable); use :meth:`with_settings` / :attr:`settings_dict`.
    prerelax: ``None`` or a machine-learned potential (``"chgnet"``, ``"sevennet"``) that relaxes
        the structure first (``task="relax"`` only); the target method's relaxation then starts from
        that geometry and the result's energy, forces and ``converged`` are the target method's own.
        Enters the content key only when set.
    accelerate: ``None`` or a machine-learned potential of :mod:`hetflow.calculators.mlip_models`
        (``"chgnet-r2scan"``, ``"7net-0"`` …) that guides the relaxation
        (:mod:`hetflow.calculators.accelerated`: the potential, force-corrected to the target's
        forces, walks; the target level checks each step); ``task="relax"`` only.  The result's
        energy, forces and ``converged`` are the target level's own.  Enters the content key only
        when set.
    """

    backend: str = "tblite"
    method: str | None = None
    task: str = "single_point"
    charge: int = 0
    multiplicity: int = 1
    periodic: bool = False
    fmax: float = 0.05
    max_steps: int = 300
    optimizer: str = "FIRE"
    want_mo: bool = False
    settings: tuple[tuple[str, Any], ...] = ()
    prerelax: str | None = None
    accelerate: str | None = None

    def __post_init__(self) -> None:
        for name in ("backend", "method", "task", "optimizer"):
            if getattr(self, name) is not None or name in ("backend", "task"):  # None: the backend's default
                validate.text(getattr(self, name), name, max_len=64)
        object.__setattr__(self, "method", canonical_method(self.backend, self.method))
        if self.task not in ("single_point", "relax"):
            raise InputError(f"unknown task {self.task!r}; choose single_point or relax")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {validate.shown(self.optimizer)}; choose one of {', '.join(OPTIMIZERS)}")
        for name in ("periodic", "want_mo"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise InputError(f"{name} must be true or false, got {validate.shown(getattr(self, name))}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        object.__setattr__(self, "charge", validate.integer(self.charge, "charge", lo=-1000, hi=1000))
        object.__setattr__(self, "multiplicity", validate.integer(self.multiplicity, "multiplicity", lo=1, hi=1000))
        validate.number(self.fmax, "fmax (eV/Å)", lo=0, lo_open=True, hi=1000)  # kept as given: it is hashed
        object.__setattr__(self, "max_steps", validate.integer(self.max_steps, "max_steps", lo=0, hi=10**7))
        if isinstance(self.settings, dict):
            validate.mapping(self.settings, "settings")
            object.__setattr__(self, "settings", _freeze(self.settings))
        if not isinstance(self.settings, tuple):
            raise InputError(f"settings must be a mapping, got {type(self.settings).__name__}")
        validate.finite_data(self.settings_dict, "settings")
        self._check_backends()

    def _check_backends(self) -> None:
        """What the backends cannot model (charge, spin, MOs), refused at the edge (one line each)."""
        target = registry.backend(self.backend)
        if self.prerelax is not None:
            pre = registry.prerelax_backend(self.prerelax)
            if pre is None:
                raise InputError(f"unknown prerelax {self.prerelax!r}; choose one of {', '.join(registry.prerelax_names())}")
            object.__setattr__(self, "prerelax", pre.name)
            if self.task != "relax":
                raise InputError("prerelax needs task='relax'")
            if pre.name == self.backend:
                raise InputError(f"prerelax {pre.name!r} is the target backend itself; drop prerelax")
            target.check_spec(self)
            pre.check_spec(self, prerelax=True)
        else:
            target.check_spec(self)
        if self.accelerate is not None:
            m = mlip_models.resolve(str(self.accelerate))
            if m is None:
                raise InputError(f"unknown accelerate potential {validate.shown(self.accelerate)}; choose one of "
                                 f"{', '.join(mlip_models.choices())}")
            object.__setattr__(self, "accelerate", m.name)
            if self.task != "relax":
                raise InputError("accelerate needs task='relax'")
            if self.prerelax is not None:
                raise InputError("accelerate and prerelax exclude each other: the guided relaxation starts on the "
                                 "potential already")
            if m.backend == self.backend:
                raise InputError(f"accelerate {m.name!r} is the target level itself; drop accelerate")
            accelerate_options(self.settings_dict)

    @property
    def settings_dict(self) -> dict[str, Any]:
        """The backend settings as a plain dict."""
        return {k: _thaw(v) for k, v in self.settings}

    def with_settings(self, **kw: Any) -> CalcSpec:
        """A copy with ``kw`` merged into the backend settings."""
        merged = self.settings_dict | kw
        return CalcSpec(**(self.to_dict() | {"settings": merged}))

    def replace(self, **kw: Any) -> CalcSpec:
        """A copy with top-level fields replaced."""
        d = self.to_dict() | kw
        return CalcSpec(**d)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (settings as a dict)."""
        d = asdict(self)
        d["settings"] = self.settings_dict
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CalcSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown CalcSpec field(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def key(self) -> str:
        """Stable hash of the spec (sha256 hex, 16 chars).

        ``prerelax`` and ``accelerate`` enter only when set, so specs without it keep the keys they had before
        the field existed (cached results stay valid).
        """
        d = self.to_dict()
        for optional in ("prerelax", "accelerate"):
            if d.get(optional) is None:
                d.pop(optional, None)
        blob = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _freeze(d: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    def fz(v: Any) -> Any:
        if isinstance(v, dict):
            return _freeze(v)
        if isinstance(v, list):
            return tuple(fz(x) for x in v)
        return v

    return tuple(sorted((str(k), fz(v)) for k, v in d.items()))


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple) and v and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in v):
        return {k: _thaw(x) for k, x in v}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


def structure_fingerprint(atoms: Atoms, decimals: int = 6) -> str:
    """Stable hash of a structure: numbers, positions (rounded to 1e-6 Å), cell, pbc.

    Per-atom label arrays do not enter (they do not change the physics).
    """
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(atoms.positions, decimals).astype(np.float64).tobytes())
    h.update(np.round(np.asarray(atoms.cell), decimals).astype(np.float64).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    return h.hexdigest()[:16]


def calc_key(atoms: Atoms, spec: CalcSpec) -> str:
    """Content key of a calculation = hash(structure, spec, calculation-code version)."""
    blob = f"{structure_fingerprint(atoms)}|{spec.key()}|{CALC_CODE_VERSION}"
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass
class CalcResult:
    """Outcome of one calculation.

    energy: total energy, eV.  forces: (N, 3) eV/Å.  atoms: final structure (relaxed for
    relaxations, input for single points), with the input's label arrays preserved.
    converged: SCF (and, for relaxations, geometry) converged.
    scf_steps / opt_steps: iteration counts (None when the backend does not report them).
    force_calls: energy+force evaluations of the spec's own method (an optimiser step can take
        more than one: line searches, Sella, PreconLBFGS; summed over restarts; 1 for a single
        point; None when the backend does not report them, e.g. CP2K's own GEO_OPT).  A
        pre-relaxation's calls are in ``extra["prerelax"]``, not here.
    wall_time: seconds.  recovery: recovery actions applied, in order.
    mo: MO data when the spec asked for it.  versions: code versions used.
    """

    energy: float
    forces: np.ndarray | None
    atoms: Atoms
    converged: bool
    spec: CalcSpec
    scf_steps: int | None = None
    opt_steps: int | None = None
    wall_time: float = 0.0
    recovery: list[str] = field(default_factory=list)
    mo: MOData | None = None
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    force_calls: int | None = None

    def summary(self) -> str:
        return (
            f"E = {self.energy:.6f} eV, converged={self.converged}, "
            f"scf={self.scf_steps}, opt={self.opt_steps}, "
            + (f"force calls={self.force_calls}, " if self.force_calls is not None else "")
            + f"{self.wall_time:.1f} s"
            + (f", recovery: {'; '.join(self.recovery)}" if self.recovery else "")
        )


@dataclass
class EngineResult:
    """One converged energy/force evaluation of an :class:`Engine` (eV, eV/Å, eV/Å³)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None
    scf_steps: int | None
    recovery: list[str] = field(default_factory=list)
    mo: MOData | None = None


class Engine(Protocol):
    """Energy/force evaluations of one spec, for the ASE optimisers of
    :mod:`hetflow.calculators.relax`."""

    def compute(self, atoms: Atoms) -> EngineResult:  # pragma: no cover - protocol
        ...


class Backend(Protocol):
    """What every calculator backend implements: one object per backend, registered by name in
    :mod:`hetflow.calculators.registry` (the only place that knows backend names).

    Backends subclass this protocol to inherit its defaults (no spec-level refusals, nothing to
    check before a job is submitted, no ASE engine).

    name: the ``CalcSpec.backend`` it serves.  methods: canonical ``CalcSpec.method`` names, the
    first the default.  label: how reports name the code (the name unless a backend says otherwise,
    ``CP2K``).  method_aliases: other spellings (lower case) → canonical name.  prerelax_aliases: spellings of ``CalcSpec.prerelax`` that name this backend (empty: it does not
    pre-relax).  relaxes_with_ase: True when :mod:`hetflow.calculators.relax` drives its
    relaxations on :meth:`engine` (``task="relax"`` never reaches :meth:`run`); False when
    :meth:`run` relaxes natively (CP2K's GEO_OPT).
    """

    name: str
    methods: tuple[str, ...]
    method_aliases: dict[str, str] = {}
    prerelax_aliases: tuple[str, ...] = ()
    relaxes_with_ase: bool = False

    @property
    def label(self) -> str:
        return self.name

    def check_spec(self, spec: CalcSpec, prerelax: bool = False) -> None:
        """Refuse what the backend cannot model (charge, spin, MOs) when ``spec`` is built;
        ``prerelax``: the backend is ``spec``'s pre-relaxer, not its target."""

    def check(self, atoms: Atoms, spec: CalcSpec) -> None:
        """Deterministic input errors (InputError, never retried), before anything runs."""

    def run(self, atoms: Atoms, spec: CalcSpec, workdir: Path | None) -> CalcResult:  # pragma: no cover
        """A single point (or a native relaxation) in this process."""
        ...

    def launch(self, func: str, atoms: Atoms, spec: CalcSpec, workdir: Path | None) -> CalcResult:
        """Run ``func`` ("module:function" taking (atoms, spec, workdir)) where this backend's
        calculations run: in this process by default (tblite: its OpenBLAS worker)."""
        module, _, name = func.partition(":")
        return getattr(importlib.import_module(module), name)(atoms, spec, workdir)

    def precheck(self, atoms: Atoms, spec: CalcSpec, directory: Path) -> None:
        """Validate the input before a batch job is submitted for it (nothing by default)."""

    def versions(self, spec: CalcSpec) -> dict[str, str]:  # pragma: no cover - protocol
        """Code versions of a calculation of ``spec`` (for ``CalcResult.versions``)."""
        ...

    def engine(self, spec: CalcSpec) -> Engine:
        """The energy/force engine of ``spec`` (backends with ``relaxes_with_ase``)."""
        raise InputError(f"backend {self.name!r} relaxes natively; it has no ASE engine")

