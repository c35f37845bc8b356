"""xTB backends: tblite (default) and xtb-python, with the SCF recovery ladder and MO data.

Both engines take positions in Bohr and return Hartree; everything leaving this module is in
eV and Å (forces eV/Å, stress eV/Å³ in ASE Voigt order).

Settings (``spec.settings``, all optional):

============================ ======================================================= =========
key                           meaning                                                 default
============================ ======================================================= =========
``accuracy``                  tblite/xtb numerical accuracy (smaller = tighter)       1.0
``electronic_temperature``    Fermi smearing temperature, K                           300
``scf_max_iter``              SCF iteration limit of the first attempt                250
``mixer_damping``             Broyden mixer damping (tblite only)                     0.4
``guess``                     initial guess ``"sad"`` or ``"eeq"`` (tblite only)      ``"sad"``
``recovery``                  ``True``, ``False`` or a list of ladder step names      ``True``
``recovery_max_iter``         SCF iteration limit of the ladder's attempts            500
``blas`` / ``threads``        see :mod:`hetflow.calculators.blas` (tblite only)       auto
============================ ======================================================= =========
"""

from __future__ import annotations

import logging
import re
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.units import Bohr, Hartree, kB

from hetflow import validate
from hetflow.calculators._tblite_run import run_tblite
from hetflow.calculators.base import Backend, CalcResult, CalcSpec, EngineResult, MOData
from hetflow.calculators.electrons import check_charge_multiplicity
from hetflow.calculators.recovery import XTB_PYTHON_LADDER, XTBAttempt, xtb_attempts
from hetflow.errors import CalculatorError, ConvergenceError, InputError

log = logging.getLogger("hetflow.calculators.xtb")

XTB_DEFAULTS: dict[str, Any] = {
    "accuracy": 1.0,
    "electronic_temperature": 300.0,
    "scf_max_iter": 250,
    "mixer_damping": 0.4,
    "guess": "sad",
    "recovery": True,
    "recovery_max_iter": 500,
    "verbosity": 1,
}
_KNOWN = set(XTB_DEFAULTS) | {"blas", "threads", "freeze", "trajectory_every"}
_GUESS = {"sad": 0, "eeq": 1}
_CYCLE = re.compile(r"^\s*(\d+)\s+-?\d+\.\d+\s+-?\d")
_NOT_CONVERGED = re.compile(r"not converged|did not converge|convergence", re.I)


def xtb_settings(spec: CalcSpec) -> dict[str, Any]:
    """The spec's settings merged over :data:`XTB_DEFAULTS`, validated."""
    s = spec.settings_dict
    unknown = set(s) - _KNOWN - {"ldos_groups", "optimizer_kwargs", "cell_filter", "scalar_pressure", "accelerate_options"}
    if unknown:
        raise InputError(
            f"unknown xTB setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KNOWN))}"
        )
    out = XTB_DEFAULTS | s
    if str(out["guess"]).lower() not in _GUESS:
        raise InputError(f"guess must be 'sad' or 'eeq', got {out['guess']!r}")
    limits = {"accuracy": (1e-4, 1e3), "electronic_temperature": (1e-6, 1e5), "mixer_damping": (1e-6, 1.0)}
    for k, (lo, hi) in limits.items():
        out[k] = validate.number(out[k], f"setting {k!r}", lo=lo, hi=hi, from_text=True)
    for k in ("scf_max_iter", "recovery_max_iter"):
        out[k] = validate.integer(out[k], f"setting {k!r}", lo=1, hi=100_000, from_text=True)
    out["verbosity"] = validate.integer(out["verbosity"], "setting 'verbosity'", lo=0, hi=3, from_text=True)
    return out


#: atoms closer than this (Å) are coincident for xTB (tblite stops on exactly equal positions)
MIN_DISTANCE = 0.1


def check_xtb_input(atoms: Atoms, spec: CalcSpec) -> None:
    """Deterministic input errors (never retried): elements, electrons, periodic cell."""
    if len(atoms) == 0:
        raise InputError("the structure has no atoms")
    bad = sorted({int(z) for z in atoms.numbers if z < 1 or z > 86})
    if bad:
        names = ", ".join(chemical_symbols[z] if z < len(chemical_symbols) else str(z) for z in bad)
        raise InputError(f"{spec.method} has no parameters for element(s) {names} (only H–Rn, Z ≤ 86)")
    check_charge_multiplicity(atoms.numbers, spec.charge, spec.multiplicity)
    if spec.periodic and abs(atoms.cell.volume) < 1e-6:
        raise InputError("periodic=True needs a structure with a 3D cell (cell volume is zero)")
    if len(atoms) > 1:
        from ase.neighborlist import neighbor_list

        probe = atoms.copy() if spec.periodic else Atoms(atoms.numbers, positions=atoms.positions)
        i, j, d = neighbor_list("ijd", probe, MIN_DISTANCE)
        if len(d):
            k = int(np.argmin(d))
            a, b = int(i[k]), int(j[k])
            raise InputError(f"atoms {min(a, b)} ({atoms[min(a, b)].symbol}) and {max(a, b)} "
                             f"({atoms[max(a, b)].symbol}) of {atoms.get_chemical_formula()} are {d[k]:.3f} Å "
                             f"apart (coincident atoms, < {MIN_DISTANCE} Å)")


def _lattice(atoms: Atoms, spec: CalcSpec) -> tuple[np.ndarray | None, np.ndarray | None]:
    if not spec.periodic:
        return None, None
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        pbc = np.ones(3, dtype=bool)
    return np.asarray(atoms.cell, dtype=float) / Bohr, pbc


def _mo_from_tblite(res: Any, calc: Any) -> MOData:
    orb_shell = np.asarray(calc.get("orbital-map"), dtype=int)
    shell_atom = np.asarray(calc.get("shell-map"), dtype=int)
    return MOData(
        eigenvalues=np.asarray(res.get("orbital-energies")) * Hartree,
        occupations=np.asarray(res.get("orbital-occupations"), dtype=float),
        coefficients=np.asarray(res.get("orbital-coefficients"), dtype=float),
        overlap=np.asarray(res.get("overlap-matrix"), dtype=float),
        ao_atom=shell_atom[orb_shell],
    )


class TBLiteEngine:
    """tblite evaluations for one spec, reusing the calculator and wavefunction between calls.

    ``compute(atoms)`` returns an :class:`EngineResult` or raises
    :class:`~hetflow.errors.ConvergenceError` once the recovery ladder is exhausted.
    Run it in the process that has the wanted BLAS (:meth:`TBLiteBackend.launch`).
    """

    def __init__(self, spec: CalcSpec) -> None:
        try:
            from tblite.interface import Calculator  # noqa: F401
        except ImportError as exc:  # pragma: no cover - tblite is a dependency
            raise CalculatorError(f"tblite is not installed ({exc}); pip install tblite") from None
        self.spec = spec
        self.s = xtb_settings(spec)
        self._calc: Any = None
        self._key: tuple | None = None
        self._res: Any = None
        self._lines: list[str] = []

    def _calculator(self, atoms: Atoms) -> Any:
        from tblite.interface import Calculator

        lattice, pbc = _lattice(atoms, self.spec)
        key = (tuple(int(z) for z in atoms.numbers), None if pbc is None else tuple(pbc))
        pos = atoms.positions / Bohr
        if self._calc is None or key != self._key:
            self._calc = Calculator(
                self.spec.method, atoms.numbers, pos,
                charge=float(self.spec.charge), uhf=int(self.spec.multiplicity) - 1,
                lattice=lattice, periodic=pbc, color=False, logger=self._lines.append,
            )
            self._key = key
            self._res = None
        else:
            self._calc.update(pos, lattice)
        return self._calc

    def _configure(self, calc: Any, a: XTBAttempt) -> None:
        calc.set("verbosity", int(self.s["verbosity"]))
        calc.set("accuracy", float(self.s["accuracy"]))
        calc.set("max-iter", int(a.max_iter))
        calc.set("mixer-damping", float(a.mixer_damping))
        calc.set("temperature", float(a.temperature) * kB / Hartree)
        calc.set("guess", _GUESS[a.guess])
        calc.set("save-integrals", 1 if self.spec.want_mo else 0)

    def _singlepoint(self, calc: Any, a: XTBAttempt, restart: Any) -> tuple[Any, int | None]:
        from tblite.interface import Result

        self._configure(calc, a)
        self._lines.clear()
        res = calc.singlepoint(Result(restart) if restart is not None else None)
        cycles = [int(m.group(1)) for m in (_CYCLE.match(x) for line in self._lines for x in line.splitlines()) if m]
        return res, (max(cycles) if cycles else None)

    def compute(self, atoms: Atoms) -> EngineResult:
        from tblite.exceptions import TBLiteRuntimeError, TBLiteValueError

        try:
            calc = self._calculator(atoms)
        except (TBLiteRuntimeError, TBLiteValueError) as exc:  # e.g. coincident atoms mid-relaxation
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CalculatorError(f"tblite cannot set up {atoms.get_chemical_formula()}: {msg}") from None
        recovery: list[str] = []
        attempts = xtb_attempts(self.s)
        last_err = ""
        for i, a in enumerate(attempts):
            try:
                if a.hot_temperature is not None:
                    hot = XTBAttempt(a.name, a.max_iter, a.mixer_damping, a.hot_temperature, a.guess)
                    res_hot, n_hot = self._singlepoint(calc, hot, None)
                    res, n = self._singlepoint(calc, a, res_hot)
                    n = (n or 0) + (n_hot or 0)
                else:
                    res, n = self._singlepoint(calc, a, self._res if i == 0 else None)
            except TBLiteValueError as exc:
                raise InputError(f"tblite rejected the input: {exc}") from None
            except TBLiteRuntimeError as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else "SCF failed"
                if not _NOT_CONVERGED.search(msg):
                    raise CalculatorError(f"tblite failed: {msg}") from None
                last_err = msg
                if i + 1 < len(attempts):
                    recovery.append(f"xtb: {msg} ({a.describe()}) → retry with {attempts[i + 1].describe()}")
                    log.warning(recovery[-1])
                continue
            if i > 0:
                recovery.append(f"xtb: converged with {a.describe()} ({n} cycles)")
            self._res = res
            return self._collect(atoms, calc, res, n, recovery)
        raise ConvergenceError(
            f"{self.spec.method} SCF did not converge for {atoms.get_chemical_formula()}: {last_err}; "
            f"tried {', '.join(a.name for a in attempts)}"
        )

    def _collect(self, atoms: Atoms, calc: Any, res: Any, n: int | None, recovery: list[str]) -> EngineResult:
        energy = float(res.get("energy")) * Hartree
        forces = -np.asarray(res.get("gradient")) * Hartree / Bohr
        stress = None
        if self.spec.periodic:
            virial = np.asarray(res.get("virial"))
            stress = (virial * Hartree / atoms.get_volume()).flat[[0, 4, 8, 5, 2, 1]]
        mo = _mo_from_tblite(res, calc) if self.spec.want_mo else None
        return EngineResult(energy, forces, stress, n, recovery, mo)


class XTBPythonEngine:
    """The ``xtb`` package (xtb-python, Grimme group) for GFN1/GFN2-xTB.

    Recovery here can raise the iteration limit and the electronic temperature only (the
    xtb API has no mixer or guess setters); MO data are eigenvalues and occupations plus
    coefficients (no overlap: use tblite for Mulliken projections).
    """

    def __init__(self, spec: CalcSpec) -> None:
        try:
            import xtb.interface  # noqa: F401
        except ImportError:
            raise CalculatorError(
                "backend 'xtb-python' needs the xtb package (pip install xtb, or conda install "
                "xtb-python); use backend 'tblite' otherwise"
            ) from None
        self.spec = spec
        self.s = xtb_settings(spec)
        self._res: Any = None
        self._calc: Any = None
        self._key: tuple | None = None

    def compute(self, atoms: Atoms) -> EngineResult:
        from xtb.interface import Calculator, Param, XTBException
        from xtb.libxtb import VERBOSITY_MUTED

        param = {"GFN1-xTB": Param.GFN1xTB, "GFN2-xTB": Param.GFN2xTB}[self.spec.method]
        lattice, pbc = _lattice(atoms, self.spec)
        key = (tuple(int(z) for z in atoms.numbers), None if pbc is None else tuple(pbc))
        pos = atoms.positions / Bohr
        if self._calc is None or key != self._key:
            self._calc = Calculator(
                param, np.asarray(atoms.numbers), pos, float(self.spec.charge),
                int(self.spec.multiplicity) - 1, lattice, pbc,
            )
            self._calc.set_verbosity(VERBOSITY_MUTED)
            self._key, self._res = key, None
        else:
            self._calc.update(pos, lattice)
        calc = self._calc
        calc.set_accuracy(float(self.s["accuracy"]))
        attempts = xtb_attempts(self.s, XTB_PYTHON_LADDER)
        recovery: list[str] = []
        last = ""
        for i, a in enumerate(attempts):
            try:
                calc.set_max_iterations(int(a.max_iter))
                if a.hot_temperature is not None:
                    calc.set_electronic_temperature(float(a.hot_temperature))
                    res = calc.singlepoint()
                    calc.set_electronic_temperature(float(a.temperature))
                    res = calc.singlepoint(res)
                else:
                    calc.set_electronic_temperature(float(a.temperature))
                    res = calc.singlepoint(self._res if (i == 0 and self._res is not None) else None)
            except XTBException as exc:
                lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()]
                last = lines[-1] if lines else "SCF failed"
                if not _NOT_CONVERGED.search(last):
                    raise CalculatorError(f"xtb-python failed: {last}") from None
                if i + 1 < len(attempts):
                    recovery.append(f"xtb-python: {last} ({a.describe()}) → retry with {attempts[i + 1].describe()}")
                    log.warning(recovery[-1])
                continue
            if i > 0:
                recovery.append(f"xtb-python: converged with {a.describe()}")
            self._res = res
            energy = float(res.get_energy()) * Hartree
            forces = -np.asarray(res.get_gradient()) * Hartree / Bohr
            stress = None
            if self.spec.periodic:
                stress = (np.asarray(res.get_virial()) * Hartree / atoms.get_volume()).flat[[0, 4, 8, 5, 2, 1]]
            mo = None
            if self.spec.want_mo:
                mo = MOData(
                    eigenvalues=np.asarray(res.get_orbital_eigenvalues()) * Hartree,
                    occupations=np.asarray(res.get_orbital_occupations(), dtype=float),
                    coefficients=np.asarray(res.get_orbital_coefficients(), dtype=float),
                )
            return EngineResult(energy, forces, stress, None, recovery, mo)
        raise ConvergenceError(
            f"{self.spec.method} (xtb-python) SCF did not converge for {atoms.get_chemical_formula()}: {last}"
        )


class XTBBackend(Backend):
    """An xTB backend: single points here, relaxations on :meth:`engine` in
    :mod:`hetflow.calculators.relax`."""

    relaxes_with_ase = True

    def __init__(self, name: str, methods: tuple[str, ...], engine_class: type, package: str) -> None:
        self.name, self.methods = name, methods
        self._engine_class, self._package = engine_class, package

    def check(self, atoms: Atoms, spec: CalcSpec) -> None:
        xtb_settings(spec)
        check_xtb_input(atoms, spec)

    def engine(self, spec: CalcSpec) -> TBLiteEngine | XTBPythonEngine:
        return self._engine_class(spec)

    def versions(self, spec: CalcSpec) -> dict[str, str]:
        """Versions of the xTB code in use."""
        try:
            return {self._package: version(self._package)}
        except PackageNotFoundError:  # pragma: no cover
            return {self._package: "unknown"}

    def run(self, atoms: Atoms, spec: CalcSpec, workdir: Path | None = None) -> CalcResult:
        """One xTB single point in this process."""
        if spec.task == "relax":
            raise InputError(f"{self.name} relaxes through run_calculation (hetflow.calculators.relax)")
        check_xtb_input(atoms, spec)
        t0 = time.perf_counter()
        r = self.engine(spec).compute(atoms)
        out = atoms.copy()
        out.calc = None
        return CalcResult(
            energy=r.energy, forces=np.asarray(r.forces), atoms=out, converged=True, spec=spec,
            scf_steps=r.scf_steps, opt_steps=None, wall_time=time.perf_counter() - t0,
            recovery=list(r.recovery), mo=r.mo, versions=self.versions(spec),
            extra={} if r.stress is None else {"stress": np.asarray(r.stress).tolist()}, force_calls=1,
        )


class TBLiteBackend(XTBBackend):
    """tblite: its calculations run in the OpenBLAS worker process when the BLAS choice asks for it
    (:mod:`hetflow.calculators.blas`)."""

    def launch(self, func: str, atoms: Atoms, spec: CalcSpec, workdir: Path | None) -> CalcResult:
        return run_tblite(func, atoms, spec, workdir)


#: the tblite backend (default): GFN1-xTB, GFN2-xTB, IPEA1-xTB
TBLITE = TBLiteBackend("tblite", ("GFN1-xTB", "GFN2-xTB", "IPEA1-xTB"), TBLiteEngine, "tblite")
#: the xtb-python backend (the ``xtb`` package): GFN1-xTB, GFN2-xTB
XTB_PYTHON = XTBBackend("xtb-python", ("GFN1-xTB", "GFN2-xTB"), XTBPythonEngine, "xtb")
