"""FakeCalculator — a cheap pair potential for ORCHESTRATION TESTS ONLY.

It is not a model of any real material.  It exists so the workflow layer (graph, store,
executors, restart) can be tested in milliseconds.  Methods:

* ``"LJ"``: ASE's Lennard-Jones (settings ``sigma`` Å, default 1.5; ``epsilon`` eV,
  default 0.01; ``rc`` Å, default 3·sigma).
* ``"EMT-like"``: ASE's Morse pair potential (settings ``epsilon`` eV, default 0.1;
  ``r0`` Å, default 1.5; ``rho0``, default 6).

Extra settings for tests: ``sleep`` (seconds to wait before computing), ``fail`` (truthy:
raise :class:`CalculatorError`; a string becomes the message), ``stop_first`` (N: the first N
runs in a workdir raise :class:`~hetflow.errors.CalculationStopped`, as CP2K at its walltime —
counted in ``<workdir>/fake-stops``).  Relaxations use ASE's
FIRE with the spec's ``fmax`` (eV/Å) and ``max_steps``.  With ``want_mo`` a toy Hückel
spectrum (eigenvalues of −(1 eV)·connectivity, 1.6 Å cutoff) stands in for MO data.

Units: energies eV, forces eV/Å, positions Å.
"""

from __future__ import annotations

import time
from pathlib import Path

import ase
import numpy as np
from ase import Atoms

from hetflow.calculators.base import Backend, CalcResult, CalcSpec, MOData
from hetflow.errors import CalculationStopped, CalculatorError


class FakeCalculator:
    """Pair-potential stand-in with injectable delay and failure (orchestration tests only)."""

    def _ase_calc(self, spec: CalcSpec):
        s = spec.settings_dict
        if spec.method == "LJ":
            from ase.calculators.lj import LennardJones

            sigma = float(s.get("sigma", 1.5))
            return LennardJones(sigma=sigma, epsilon=float(s.get("epsilon", 0.01)),
                                rc=float(s.get("rc", 3 * sigma)), smooth=True)
        from ase.calculators.morse import MorsePotential

        return MorsePotential(epsilon=float(s.get("epsilon", 0.1)), r0=float(s.get("r0", 1.5)),
                              rho0=float(s.get("rho0", 6.0)))

    def run(self, atoms: Atoms, spec: CalcSpec, workdir: str | Path | None = None) -> CalcResult:
        """Compute energy (eV) and forces (eV/Å); relax when ``spec.task == "relax"``."""
        s = spec.settings_dict
        t0 = time.time()
        if s.get("sleep"):
            time.sleep(float(s["sleep"]))
        if s.get("stop_first") and workdir is not None:
            marker = Path(workdir) / "fake-stops"
            done = int(marker.read_text()) if marker.exists() else 0
            if done < int(s["stop_first"]):
                marker.write_text(str(done + 1))
                raise CalculationStopped(f"FakeCalculator: stop {done + 1} of {s['stop_first']} requested by settings")
        if s.get("fail"):
            msg = s["fail"] if isinstance(s["fail"], str) else "fake failure requested by settings"
            raise CalculatorError(f"FakeCalculator: {msg}")
        work = atoms.copy()
        work.calc = self._ase_calc(spec)
        steps = None
        converged = True
        if spec.task == "relax":
            from ase.optimize import FIRE

            opt = FIRE(work, logfile=None)
            converged = bool(opt.run(fmax=spec.fmax, steps=spec.max_steps))
            steps = int(opt.nsteps)
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces())
        final = atoms.copy()
        final.positions = work.positions
        mo = _toy_mo(final) if spec.want_mo else None
        return CalcResult(energy=energy, forces=forces, atoms=final, converged=converged,
                          spec=spec, scf_steps=1, opt_steps=steps, wall_time=time.time() - t0,
                          mo=mo, versions=FAKE.versions(spec))


def _toy_mo(atoms: Atoms) -> MOData:
    """Toy Hückel spectrum: H = −1 eV × (d < 1.6 Å) connectivity; 2 electrons per atom / 2."""
    d = atoms.get_all_distances()
    h = -1.0 * ((d < 1.6) & (d > 0)).astype(float)
    eig, vec = np.linalg.eigh(h)
    occ = np.zeros(len(eig))
    occ[: len(atoms) // 2] = 2.0
    return MOData(eigenvalues=eig, occupations=occ, coefficients=vec,
                  overlap=np.eye(len(atoms)), ao_atom=np.arange(len(atoms)))


class FakeBackend(Backend):
    """The ``fake`` backend: :class:`FakeCalculator` (orchestration tests only; relaxes with its own FIRE)."""

    name = "fake"
    methods = ("LJ", "EMT-like")
    relaxes_with_ase = False

    def run(self, atoms: Atoms, spec: CalcSpec, workdir: str | Path | None = None) -> CalcResult:
        return FakeCalculator().run(atoms, spec, workdir)

    def versions(self, spec: CalcSpec) -> dict[str, str]:
        return {"ase": ase.__version__, "fake": "1"}


#: the fake backend
FAKE = FakeBackend()
