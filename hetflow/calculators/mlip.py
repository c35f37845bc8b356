"""Machine-learned interatomic potentials: CHGNet and SevenNet models, offline, on the CPU.

Universal potentials trained on Materials Project data (MPtrj: bulk VASP PBE / PBE+U; the r²SCAN
models on MP's r²SCAN calculations), so they are a PBE-level *screening* level and a cheap
pre-relaxer — not a replacement for the final energies of a table.  Every model of
:mod:`hetflow.calculators.mlip_models` (CHGNet 0.3.0, 0.2.0, r²SCAN; 7net-0, 7net-l3i5, 7net-MF-0
with its PBE head) ships its weights inside the PyPI wheels; nothing is downloaded at run time (a
missing weight file is an error, never a download).  ``spec.backend`` is ``chgnet`` or
``sevennet``, ``spec.method`` the model's name.

**Finite clusters.**  Both models are periodic (CHGNet builds a pymatgen ``Structure``, which always
has a lattice).  A non-periodic spec (``periodic=False``, the default) therefore puts the cluster in
an orthorhombic box of its own extent plus ``vacuum`` Å on every side (default 6 Å, so periodic
images are ≥ 12 Å apart — more than either cutoff) and evaluates that.  Once the gap between
images (2 × ``vacuum``) exceeds the model's cutoff no atom sees an image, so the energy does not
depend on the box (tested to 1e-6 eV); ``vacuum`` below half the cutoff is refused.  The box is
rebuilt around the current positions at every evaluation, so a relaxation never runs into it.
``periodic=True`` uses the structure's own cell (slabs, bulk cells) and also returns the stress.

**Units.**  Energies eV (total, extensive), forces eV/Å, stress eV/Å³ (ASE Voigt order, periodic
only).  The models predict in float32: energies are good to ~1e-5 relative, forces to ~1e-3 eV/Å.

**Not modelled** (one-line :class:`~hetflow.errors.InputError` when the spec is built, see
:meth:`MLIPBackend.check_spec`): a total charge, spin (multiplicity ≠ 1) and MO data.
Elements outside the model's training set are refused before the first evaluation.

**Settings** (``spec.settings``): ``vacuum`` (Å per side, non-periodic specs), ``threads`` (torch
intra-op threads; else ``HETFLOW_THREADS``, else ``OMP_NUM_THREADS``, else all CPUs — prefer the
environment variables, settings enter the content key), and for relaxations ``freeze`` and
``optimizer_kwargs`` (see :mod:`hetflow.calculators.relax`).

torch, chgnet and sevenn are imported only when one of these backends is used.  The backend
objects :data:`CHGNET` and :data:`SEVENNET` (:class:`~hetflow.calculators.base.Backend`) are
registered in :mod:`hetflow.calculators.registry`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import all_changes
from ase.data import chemical_symbols
from ase.stress import full_3x3_to_voigt_6_stress

from hetflow.calculators.base import Backend, CalcResult, CalcSpec, EngineResult
from hetflow.calculators.blas import default_threads
from hetflow.calculators.mlip_models import BY_BACKEND, MODELS, MLIPModel
from hetflow.errors import CalculatorError, InputError

log = logging.getLogger("hetflow.calculators.mlip")

#: Default empty space around a finite cluster on every side, Å.
DEFAULT_VACUUM = 6.0

#: Interaction cutoff of each model, Å (the largest graph cutoff the model builds).
CUTOFF: dict[str, float] = {m.name: m.cutoff for m in MODELS.values()}

#: Highest atomic number CHGNet 0.3.0 has an embedding for (its training set: H–Pu).
CHGNET_MAX_Z = 94

_KNOWN = {"vacuum", "threads", "freeze", "optimizer_kwargs", "cell_filter", "scalar_pressure"}

_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()
_EVAL_LOCK = threading.Lock()


def mlip_settings(spec: CalcSpec) -> dict[str, Any]:
    """The spec's settings for an MLIP backend, validated (``vacuum`` as float)."""
    s = spec.settings_dict
    unknown = set(s) - _KNOWN
    if unknown:
        raise InputError(
            f"unknown {spec.backend} setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KNOWN))}"
        )
    out = dict(s)
    try:
        vac = float(out.get("vacuum", DEFAULT_VACUUM))
    except (TypeError, ValueError):
        raise InputError(f"setting 'vacuum' must be a number of Å, got {out.get('vacuum')!r}") from None
    cut = CUTOFF[spec.method]
    if not np.isfinite(vac) or 2 * vac <= cut:
        raise InputError(
            f"setting 'vacuum' must be > {cut / 2:g} Å so that periodic images of the cluster are farther "
            f"apart than the {spec.method} cutoff ({cut:g} Å), got {out.get('vacuum')!r}"
        )
    out["vacuum"] = vac
    return out


def check_mlip_input(atoms: Atoms, spec: CalcSpec) -> None:
    """Deterministic input errors (never retried): backend, empty structure, elements, cell."""
    _backend(spec).check(atoms, spec)


def boxed(atoms: Atoms, vacuum: float) -> Atoms:
    """A bare copy of a finite cluster centred in an orthorhombic box, ``vacuum`` Å on every side.

    Only numbers and positions are kept (labels are not needed by the models); ``pbc`` is True.
    """
    pos = np.asarray(atoms.positions, dtype=float)
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    lengths = hi - lo + 2.0 * vacuum
    out = Atoms(numbers=atoms.numbers, positions=pos - lo + vacuum, cell=np.diag(lengths), pbc=True)
    return out


def _torch_threads(settings: dict[str, Any]) -> int:
    raw = settings.get("threads")
    try:
        n = int(raw) if raw is not None else default_threads()
    except (TypeError, ValueError):
        raise InputError(f"settings 'threads' must be an integer, got {raw!r}") from None
    if n < 1:
        raise InputError(f"settings 'threads' must be >= 1, got {n}")
    return n


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise CalculatorError(
            "the machine-learned potentials need PyTorch (CPU): pip install torch==2.13.0, then "
            "pip install 'hetflow[mlip]'"
        ) from None
    return torch


def _load_chgnet(m: MLIPModel) -> Any:
    try:
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError as exc:
        raise CalculatorError(f"backend 'chgnet' needs the chgnet package ({exc}); pip install 'hetflow[mlip]'") from None
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CHGNet.load(model_name=m.weights, use_device="cpu", verbose=False)
        return CHGNetCalculator(model=model, use_device="cpu", on_isolated_atoms="warn")


def _sevennet_checkpoint(m: MLIPModel) -> str:
    try:
        from sevenn import _const
    except ImportError as exc:
        raise CalculatorError(f"backend 'sevennet' needs the sevenn package ({exc}); pip install 'hetflow[mlip]'") from None
    path = getattr(_const, m.weights, None)
    if not path or not os.path.isfile(path):
        # sevenn would download a missing checkpoint; hetflow never does (no network at run time)
        raise CalculatorError(
            f"SevenNet {m.name} weights not found ({path}); the sevenn wheel ships them — reinstall sevenn"
        )
    return path


def _load_sevennet(m: MLIPModel) -> Any:
    path = _sevennet_checkpoint(m)
    from sevenn.calculator import SevenNetCalculator

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"modal": m.head} if m.head else {}
        return SevenNetCalculator(model=path, device="cpu", **kw)


def model_calculator(method: str) -> Any:
    """The (cached) ASE calculator of a pretrained model: loaded once per process."""
    with _MODELS_LOCK:
        calc = _MODELS.get(method)
        if calc is None:
            _import_torch()
            t0 = time.perf_counter()
            m = MODELS[method]
            calc = _backend_named(m.backend).load(m)
            log.info("loaded %s in %.1f s", method, time.perf_counter() - t0)
            _MODELS[method] = calc
        return calc


def versions(spec: CalcSpec) -> dict[str, str]:
    """Model name and package versions of an MLIP spec (for ``CalcResult.versions``)."""
    return _backend(spec).versions(spec)


class MLIPEngine:
    """Energy/force evaluations of one MLIP spec; ``compute(atoms)`` → ``EngineResult``.

    Same interface as the xTB engines (:mod:`hetflow.calculators.xtb`), so the relaxation driver
    (:mod:`hetflow.calculators.relax`) runs on either.  Sets torch's thread count on creation.
    """

    def __init__(self, spec: CalcSpec) -> None:
        self.backend = _backend(spec)
        self.spec = spec
        self.s = mlip_settings(spec)
        torch = _import_torch()
        self.threads = _torch_threads(self.s)
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        self.calc = model_calculator(spec.method)
        self._checked: set[int] = set()

    def _check_elements(self, atoms: Atoms) -> None:
        zs = {int(z) for z in atoms.numbers} - self._checked
        if zs:
            self.backend.check_model_elements(self.calc, self.spec, zs)
        self._checked |= zs

    def compute(self, atoms: Atoms) -> EngineResult:
        self._check_elements(atoms)
        if self.spec.periodic:
            work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell,
                         pbc=atoms.pbc if np.any(atoms.pbc) else True)
            props = ["energy", "forces", "stress"]
        else:
            work = boxed(atoms, self.s["vacuum"])
            props = ["energy", "forces"]
        kw = self.backend.calculate_kwargs(self.spec)
        with _EVAL_LOCK, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            # the cached model calculator is shared by the threads of this process
            warnings.simplefilter("ignore")
            self.calc.calculate(work, props, all_changes, **kw)
            res = dict(self.calc.results)
        energy = float(np.asarray(res["energy"]).reshape(()))
        forces = np.asarray(res["forces"], dtype=float).reshape(len(atoms), 3)
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            raise CalculatorError(f"{self.spec.method} returned a non-finite energy or force for {atoms.get_chemical_formula()}")
        stress = None
        if self.spec.periodic and "stress" in res:
            stress = np.asarray(res["stress"], dtype=float)
            if stress.shape == (3, 3):  # CHGNet gives the full tensor, SevenNet Voigt
                stress = full_3x3_to_voigt_6_stress(stress)
            stress = stress.reshape(6)
        return EngineResult(energy=energy, forces=forces, stress=stress, scf_steps=None, recovery=[])


def run_mlip(atoms: Atoms, spec: CalcSpec, workdir: Path | None = None) -> CalcResult:
    """Single point with an MLIP backend, in this process."""
    check_mlip_input(atoms, spec)
    if spec.task == "relax":  # relaxations go through hetflow.calculators.relax (run_calculation)
        raise InputError("run_mlip computes single points; relax through run_calculation")
    t0 = time.perf_counter()
    engine = MLIPEngine(spec)
    r = engine.compute(atoms)
    out = atoms.copy()
    out.calc = None
    extra: dict[str, Any] = {"threads": engine.threads}
    if r.stress is not None:
        extra["stress"] = r.stress.tolist()
    return CalcResult(
        energy=r.energy, forces=r.forces, atoms=out, converged=True, spec=spec, scf_steps=None,
        opt_steps=None, wall_time=time.perf_counter() - t0, recovery=[], mo=None,
        versions=versions(spec), extra=extra, force_calls=1,
    )


# ----------------------------------------------------------------------------- the backends


class MLIPBackend(Backend):
    """A family of pretrained potentials of :mod:`hetflow.calculators.mlip_models` (one package);
    single points here, relaxations on :meth:`engine` in :mod:`hetflow.calculators.relax`."""

    relaxes_with_ase = True
    #: the Python package that loads the models
    package = ""

    def __init__(self, name: str, prerelax_aliases: tuple[str, ...]) -> None:
        models = BY_BACKEND[name]
        self.name = name
        self.methods = tuple(m.name for m in models)
        self.method_aliases = {a: m.name for m in models for a in m.aliases}
        self.prerelax_aliases = prerelax_aliases

    def check_spec(self, spec: CalcSpec, prerelax: bool = False) -> None:
        """Neutral, closed-shell, no MOs: refused when the spec is built (one line each)."""
        if spec.charge != 0:
            raise InputError(f"{self.name} cannot model charged systems (charge={spec.charge}); use an xTB or cp2k backend")
        if spec.multiplicity != 1:
            raise InputError(
                f"{self.name} cannot model spin (multiplicity={spec.multiplicity}); use an xTB or cp2k backend"
            )
        if spec.want_mo and not prerelax:
            raise InputError(f"{self.name} has no molecular orbitals (want_mo=True); use an xTB or cp2k backend")

    def check(self, atoms: Atoms, spec: CalcSpec) -> None:
        """Deterministic input errors (never retried): backend, empty structure, elements, cell."""
        if spec.backend != self.name:
            raise InputError(f"backend {spec.backend!r} is not {self.name}")
        if len(atoms) == 0:
            raise InputError("the structure has no atoms")
        mlip_settings(spec)
        self.check_input_elements(atoms, spec)
        if spec.periodic and abs(atoms.cell.volume) < 1e-6:
            raise InputError("periodic=True needs a structure with a 3D cell (cell volume is zero)")

    def check_input_elements(self, atoms: Atoms, spec: CalcSpec) -> None:
        """Elements refused before a model is loaded (none by default)."""

    def check_model_elements(self, calc: Any, spec: CalcSpec, zs: set[int]) -> None:
        """Elements refused once the model is loaded (none by default)."""

    def calculate_kwargs(self, spec: CalcSpec) -> dict[str, Any]:
        """Extra keyword arguments of the model calculator's ``calculate``."""
        return {}

    def load(self, m: MLIPModel) -> Any:  # pragma: no cover - every family implements it
        raise NotImplementedError

    def versions(self, spec: CalcSpec) -> dict[str, str]:
        """Model name and package versions of a spec (for ``CalcResult.versions``)."""
        out = {"model": spec.method}
        for name in (self.package, "torch"):
            try:
                out[name] = version(name)
            except PackageNotFoundError:  # pragma: no cover
                out[name] = "unknown"
        return out

    def engine(self, spec: CalcSpec) -> MLIPEngine:
        return MLIPEngine(spec)

    def run(self, atoms: Atoms, spec: CalcSpec, workdir: Path | None = None) -> CalcResult:
        return run_mlip(atoms, spec, workdir)


class CHGNetBackend(MLIPBackend):
    package = "chgnet"

    def check_input_elements(self, atoms: Atoms, spec: CalcSpec) -> None:
        bad = sorted({int(z) for z in atoms.numbers if z < 1 or z > CHGNET_MAX_Z})
        if bad:
            names = ", ".join(chemical_symbols[z] if 0 <= z < len(chemical_symbols) else str(z) for z in bad)
            raise InputError(f"{spec.method} has no parameters for element(s) {names} (only H–Pu, Z ≤ 94)")

    def calculate_kwargs(self, spec: CalcSpec) -> dict[str, Any]:
        return {"task": "efs" if spec.periodic else "ef"}

    def load(self, m: MLIPModel) -> Any:
        return _load_chgnet(m)


class SevenNetBackend(MLIPBackend):
    package = "sevenn"

    def check_model_elements(self, calc: Any, spec: CalcSpec, zs: set[int]) -> None:
        bad = sorted(zs - {int(z) for z in calc.type_map})
        if bad:
            raise InputError(
                f"{spec.method} has no parameters for element(s) {', '.join(chemical_symbols[z] for z in bad)}"
            )

    def load(self, m: MLIPModel) -> Any:
        return _load_sevennet(m)

    def versions(self, spec: CalcSpec) -> dict[str, str]:
        out = super().versions(spec)
        m = MODELS[spec.method]
        out["checkpoint"] = Path(_sevennet_checkpoint(m)).parent.name + (f" ({m.head} head)" if m.head else "")
        return out


#: CHGNet models (CHGNet-0.3.0 the default)
CHGNET = CHGNetBackend("chgnet", prerelax_aliases=("chgnet", "chgnet-0.3.0"))
#: SevenNet models (7net-0 the default)
SEVENNET = SevenNetBackend("sevennet", prerelax_aliases=("sevennet", "7net-0", "sevennet-0"))

_FAMILIES: dict[str, MLIPBackend] = {b.name: b for b in (CHGNET, SEVENNET)}


def _backend_named(name: str) -> MLIPBackend:
    b = _FAMILIES.get(name)
    if b is None:
        raise InputError(f"backend {name!r} is not a machine-learned potential")
    return b


def _backend(spec: CalcSpec) -> MLIPBackend:
    return _backend_named(spec.backend)
