"""CP2K PBE backend: inputs built and validated with cp2k-input-tools and ``cp2k.psmp --check``,
run (resuming interrupted runs), parsed.

The ``"paper"`` preset is the published method (SCIENCE.md): PBE, GTH-PBE pseudopotentials,
DZVP-MOLOPT-SR-GTH basis, plane-wave cutoff 400 Ry, non-periodic box (``PERIODIC NONE``) of
52 × 68 × 52 Å — or, with ``settings["vacuum"]`` (Å), a cubic box of the largest model extent
plus that vacuum on each side — and, for ``task="relax"``, a CP2K ``GEO_OPT`` (BFGS) to a maximum
force of 4.5e-4 Ha/Bohr.  Box and Poisson solver follow the rule of
:mod:`hetflow.calculators.cp2k_box` (WAVELET in cubic boxes, MT in non-cubic boxes at least twice
the density extent, else WAVELET in the enclosing cube); the input's header comment says which
and why.

Settings (``spec.settings``):

================== ============================================================ ===============
key                 meaning                                                      default
================== ============================================================ ===============
``preset``          only ``"paper"``                                             ``"paper"``
``box``             box edges a, b, c in Å                                       52, 68, 52
``vacuum``          Å of vacuum each side: cubic box, edge = largest extent + 2·vacuum (use ``box``)
``poisson_solver``  ``auto``, ``WAVELET``, ``MT``, ``ANALYTIC`` (cp2k_box)       ``auto``
``cutoff``          plane-wave cutoff, Ry                                        400
``max_scf``         SCF steps per attempt (inner loop)                           50
``eps_scf``         SCF convergence                                              1e-6
``scf``             first attempt ``"ot"`` or ``"diagonalization"``              ``"ot"``
``max_force``       GEO_OPT max force, Ha/Bohr                                   4.5e-4
``nlumo``           unoccupied MOs printed in the PDOS files                     20
``ldos_groups``     {name: [atom indices, 0-based]} — one ``&LDOS`` list each    by ``domain``
``mpi_ranks``       ``mpirun -np`` ranks (1: no mpirun)                          2 (≤ CPUs)
``executable``      CP2K binary                                                  ``cp2k.psmp``
``data_dir``        directory with BASIS_MOLOPT and GTH_POTENTIALS               see below
``recovery``        ``True``/``False``/list of ladder steps                      ``True``
================== ============================================================ ===============

Data files: ``data_dir`` setting, else ``$CP2K_DATA_DIR``, else ``/usr/share/cp2k/data``, else
``/usr/share/cp2k`` (where Debian's ``cp2k-data`` installs them).

Error handlers, each recorded in ``CalcResult.recovery`` (→ the store's provenance) and none
changing a setting that enters energy differences unless it says so:

* SCF non-convergence — the ladder of :mod:`hetflow.calculators.recovery` (``diagonalization``,
  ``more_steps``; opt-in ``restart_wfn``, ``smearing``), each from the last ``-RESTART.wfn``.
* walltime — ``&GLOBAL WALLTIME`` below the allocation's end; a run CP2K stopped there raises
  :class:`~hetflow.errors.CalculationStopped` and resumes on resubmission
  (:mod:`hetflow.calculators.cp2k_restart`).
* kill / node loss — an attempt with an output but no ``result.ok`` resumes from its last
  geometry and wavefunction.
* truncated output (no total energy although CP2K ended) — the attempt reruns once, resuming.
* geometry-step exhaustion — the ``max_steps`` budget (counted over resumptions) is never
  exceeded: the result is returned with ``converged=False`` and the final max force recorded.

Every attempt writes ``<workdir>/attempt-<k>/`` with its own input and output; interrupted runs
of an attempt are archived in ``attempt-<k>/segment-<n>/``.
``CalcResult.extra["energy_settings"]`` lists the settings that enter energy differences
(compare rows with :func:`hetflow.calculators.recovery.energy_settings_differ`).

Units out: eV, eV/Å, Å; MO eigenvalues in eV.

The backend in modules by idea: :mod:`~hetflow.calculators.cp2k_preset` (preset, settings, data
files), :mod:`~hetflow.calculators.cp2k_input` (the input), :mod:`~hetflow.calculators.cp2k_output`
(parsing), :mod:`~hetflow.calculators.cp2k_box` (box and Poisson solver),
:mod:`~hetflow.calculators.cp2k_restart` (resumption); this module runs CP2K with the error
handlers above, holds the backend object :data:`CP2K` and re-exports the public names of the others.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from hetflow.calculators import cp2k_restart as rst
from hetflow.calculators.base import Backend, CalcResult, CalcSpec
from hetflow.calculators.cp2k_box import choose_poisson
from hetflow.calculators.cp2k_input import (  # re-exported: the input side
    build_input_tree, energy_settings, input_header, parsed_ldos_lists, render_input, scf_section, write_input)
from hetflow.calculators.cp2k_output import (  # re-exported: the output side
    _abort_message, _forces_blocks, _last_xyz_frame, _scf_failed, parse_output, read_pdos)
from hetflow.calculators.cp2k_preset import (  # re-exported: settings, data files
    CP2K_DEFAULTS, PAPER_PRESET, PROJECT, box_for, cp2k_settings, data_dir, kinds_for, ldos_groups)
from hetflow.calculators.recovery import CP2K_LADDER, CP2K_STEPS, ENERGY_AFFECTING, ladder_steps
from hetflow.errors import CalculationStopped, CalculatorError, ConvergenceError

__all__ = [
    "CP2K", "CP2KBackend", "run_cp2k", "precheck", "check_input_with_cp2k", "command", "executable",
    # settings and data files (cp2k_preset)
    "CP2K_DEFAULTS", "PAPER_PRESET", "PROJECT", "box_for", "cp2k_settings", "data_dir", "kinds_for", "ldos_groups",
    # input (cp2k_input)
    "build_input_tree", "energy_settings", "input_header", "parsed_ldos_lists", "render_input", "scf_section",
    "write_input",
    # output (cp2k_output)
    "parse_output", "read_pdos", "_abort_message", "_forces_blocks", "_last_xyz_frame", "_scf_failed",
]

log = logging.getLogger("hetflow.calculators.cp2k")

# ----------------------------------------------------------------------------- run


def executable(settings: dict[str, Any]) -> str:
    """Absolute path of the CP2K binary; CalculatorError when it is not on PATH."""
    exe = str(settings.get("executable") or os.environ.get("HETFLOW_CP2K") or "cp2k.psmp")
    path = shutil.which(exe)
    if path is None:
        raise CalculatorError(f"CP2K executable {exe!r} not found on PATH; install cp2k or set settings 'executable'")
    return path


def command(settings: dict[str, Any], inp: str = f"{PROJECT}.inp", out: str = f"{PROJECT}.out") -> list[str]:
    """The command line: ``mpirun -np N cp2k.psmp -i hetflow.inp -o hetflow.out`` (no mpirun for N = 1)."""
    exe = executable(settings)
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = max(1, min(int(settings.get("mpi_ranks", 2)), ncpu))
    mpirun = shutil.which("mpirun")
    if n > 1 and mpirun:
        return [mpirun, "-np", str(n), exe, "-i", inp, "-o", out]
    return [exe, "-i", inp, "-o", out]


def _env(settings: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(int(settings.get("threads", 1)))
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # Open MPI refuses root without these
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def _version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(r"CP2K version\s+(\S+)", out)
    return m.group(1) if m else "unknown"


def check_input_with_cp2k(inp: Path, settings: dict[str, Any] | None = None) -> None:
    """Ask CP2K itself (``cp2k.psmp --check``) whether the input is valid; CalculatorError if not."""
    settings = settings or {}
    exe = executable(settings)
    p = subprocess.run([exe, "--check", inp.name], cwd=inp.parent, capture_output=True, text=True,
                       env=_env(settings), timeout=300)
    if p.returncode != 0:
        msg = _abort_message(p.stdout + p.stderr) or f"exit status {p.returncode}"
        raise CalculatorError(f"CP2K rejects {inp}: {msg}")


def precheck(atoms: Atoms, spec: CalcSpec, directory: str | Path) -> Path:
    """Write the first attempt's input into ``directory`` and validate it — with cp-input-tools
    always and with ``cp2k.psmp --check`` when CP2K is installed here (before a job is submitted).
    Raises InputError / CalculatorError with CP2K's own message."""
    s = cp2k_settings(spec)
    inp = write_input(atoms, spec, directory)
    try:
        executable(s)
    except CalculatorError:
        return inp  # CP2K only on the compute nodes (module): cp2k-input-tools validated it
    check_input_with_cp2k(inp, s)
    return inp


def _wfn_ok(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def _out_text(d: Path) -> str:
    out = d / f"{PROJECT}.out"
    return out.read_text(errors="replace") if out.exists() else ""


class _Run:
    """Bookkeeping of one run_cp2k call: records and the step budget over attempts and segments."""

    def __init__(self, spec: CalcSpec, s: dict[str, Any]):
        self.spec, self.s = spec, s
        self.recovery: list[str] = []
        self.geo_used = 0

    def note(self, line: str) -> None:
        self.recovery.append(line)
        log.warning(line)


def _resume_point(d: Path, k: int, start: Atoms, wfn: str | None, run: _Run,
                  why: str | None = None, archive: bool = True) -> tuple[Atoms, str | None]:
    """Where to resume attempt ``k`` from: its last segment (archived first from the
    interrupted run's files when ``archive``) — last trajectory frame and wavefunction."""
    seg = rst.archive_segment(d, why) if archive else rst.segments(d)[-1]
    geo_txt, wfn_txt = "the attempt's start geometry", "its start guess"
    if run.spec.task == "relax":
        frames = [g for g in rst.segments(d) if g.frames]
        if frames:
            start = _last_xyz_frame(frames[-1].trajectory, start)
            geo_txt = f"frame {frames[-1].frames} of {frames[-1].trajectory.relative_to(d.parent)}"
    wfns = [g for g in rst.segments(d) if g.has_wfn]
    if wfns:
        wfn = str(wfns[-1].wfn)
        wfn_txt = f"{wfns[-1].wfn.relative_to(d.parent)} (SCF_GUESS RESTART)"
    if archive:
        run.note(f"cp2k: attempt-{k} resumed after {seg.reason} (segment {seg.index}: "
                 f"{seg.scf_iterations} SCF iterations, {seg.geo_steps} geometry steps done) "
                 f"from {geo_txt} and {wfn_txt}")
    return start, wfn


def _attempt(d: Path, k: int, step: str, start: Atoms, wfn: str | None, run: _Run) -> CalcResult:
    """Run (or resume, or re-read) attempt ``k``; ConvergenceError when its SCF failed."""
    spec, s = run.spec, run.s
    done = d / "result.ok"
    for _try in range(2):
        if done.exists():
            try:
                return parse_output(d, start, spec)
            except ConvergenceError:
                raise
            except CalculatorError as exc:
                if any(g.reason.startswith("truncated") for g in rst.segments(d)):
                    raise
                walltime = rst.cp2k_walltime()  # before touching any file: CalculationStopped
                done.unlink()
                start, wfn = _resume_point(d, k, start, wfn, run, "truncated output of a finished run "
                                           f"({str(exc).split(': ', 1)[-1]})")
        else:
            walltime = rst.cp2k_walltime()  # before touching any file: CalculationStopped
            if (d / f"{PROJECT}.out").exists():
                start, wfn = _resume_point(d, k, start, wfn, run)
            elif rst.segments(d):  # archived earlier, not rerun since
                start, wfn = _resume_point(d, k, start, wfn, run, archive=False)
        budget = int(spec.max_steps) - run.geo_used - sum(g.geo_steps for g in rst.segments(d))
        inp = write_input(start, spec, d, step, wfn, walltime, max(1, budget) if spec.task == "relax" else None)
        check_input_with_cp2k(inp, s)
        cmd = command(s)
        log.info("CP2K %s (%s) in %s: %s", spec.task, step, d, " ".join(cmd))
        proc = subprocess.run(cmd, cwd=d, env=_env(s), capture_output=True, text=True)
        text = _out_text(d)
        reason = rst.stop_reason(text)
        if reason:
            raise CalculationStopped(f"CP2K stopped at its {reason} ({walltime or 0:.0f} s) in {d} after "
                                     f"{rst.scf_iterations(text)} SCF iterations; resubmit to resume from "
                                     "its restart files")
        if proc.returncode != 0 and not _scf_failed(text):
            msg = _abort_message(text + proc.stdout + proc.stderr)
            sig = -proc.returncode if proc.returncode < 0 else proc.returncode - 128 if proc.returncode > 128 else 0
            if not msg and sig in (9, 15):  # SIGKILL (out of memory, scheduler) / SIGTERM
                msg = (f"killed by signal {sig} ({'SIGKILL: out of memory or the scheduler' if sig == 9 else 'SIGTERM'}) "
                       f"after {rst.scf_iterations(text)} SCF iterations; running it again resumes from its restart files")
            raise CalculatorError(f"CP2K failed in {d}: {msg or f'exit status {proc.returncode}'}")
        try:
            result = parse_output(d, start, spec)
        except ConvergenceError:
            raise
        except CalculatorError:
            if rst.finished(text) or _try:
                raise
            start, wfn = _resume_point(d, k, start, wfn, run, "truncated output (CP2K exited 0 before its end)")
            continue  # handler: truncated output → one rerun, resuming
        done.write_text("ok\n")
        return result
    raise CalculatorError(f"CP2K output in {d} stays truncated after a rerun")


def _collect(workdir: Path, last: int, result: CalcResult, run: _Run, step: str, atoms: Atoms) -> None:
    """Totals and records over all attempts and segments into the result."""
    restarts, scf_total, geo_total = [], 0, 0
    for k in range(last + 1):
        d = workdir / f"attempt-{k}"
        for g in rst.segments(d):
            restarts.append({"attempt": k, "segment": g.index, "reason": g.reason,
                             "scf_iterations": g.scf_iterations, "geo_steps": g.geo_steps,
                             "resumed_wfn": g.has_wfn, "resumed_frame": g.frames or None})
            scf_total += g.scf_iterations
            geo_total += g.geo_steps
        text = _out_text(d)
        scf_total += rst.scf_iterations(text)
        geo_total += rst.geo_steps(text)
    result.extra["restarts"] = restarts
    warn = rst.warnings(_out_text(workdir / f"attempt-{last}"))
    if warn:
        result.extra["cp2k_warnings"] = warn
        for w in warn:
            log.warning("CP2K warning: %s", w)
    result.extra["scf_iterations_total"] = scf_total
    if result.spec.task == "relax":
        result.opt_steps = geo_total
        if not result.converged:
            fmax = (float(np.sqrt((result.forces ** 2).sum(axis=1)).max()) * Bohr / Hartree
                    if result.forces is not None else float("nan"))
            run.note(f"cp2k: GEO_OPT stopped after {geo_total} steps (max_steps budget {result.spec.max_steps}, "
                     f"counted over resumptions) with max force {fmax:.2e} Ha/Bohr > {float(run.s['max_force']):g}: "
                     "returned as not converged, settings unchanged")
            result.extra["geo_exhausted"] = True
    poisson = choose_poisson(atoms, run.s)
    result.extra["energy_settings"] = energy_settings(run.s, poisson, step)
    result.extra["energy_affecting_recovery"] = step in ENERGY_AFFECTING
    result.extra["poisson"] = poisson.to_dict()


def run_cp2k(atoms: Atoms, spec: CalcSpec, workdir: Path | None = None) -> CalcResult:
    """Write, check, run and parse CP2K for ``spec`` (single point or GEO_OPT) with the error
    handlers of the module doc; an interrupted earlier run in ``workdir`` is resumed."""
    s = cp2k_settings(spec)
    command(s)  # missing executable: fail before writing anything
    choose_poisson(atoms, s)  # impossible box/solver: fail before writing anything
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="hetflow-cp2k-")
        workdir = Path(tmp)
    workdir.mkdir(parents=True, exist_ok=True)
    steps = ["requested"] + ladder_steps(s["recovery"], CP2K_LADDER, CP2K_STEPS)
    run = _Run(spec, s)
    t0 = time.perf_counter()
    start = atoms.copy()
    wfn: str | None = None
    try:
        for k, step in enumerate(steps):
            d = workdir / f"attempt-{k}"
            try:
                result = _attempt(d, k, step, start, wfn, run)
            except ConvergenceError as exc:
                text = _out_text(d)
                run.geo_used += rst.geo_steps(text) + sum(g.geo_steps for g in rst.segments(d))
                restart = d / f"{PROJECT}-RESTART.wfn"
                wfn = str(restart) if _wfn_ok(restart) else wfn
                geo = d / f"{PROJECT}-pos-1.xyz"
                if spec.task == "relax" and geo.exists():
                    start = _last_xyz_frame(geo, start)
                if k + 1 < len(steps):
                    nxt = steps[k + 1]
                    flag = (" — changes the energy functional (Fermi–Dirac 300 K): this row is not comparable "
                            "with unsmeared ones") if nxt in ENERGY_AFFECTING else ""
                    run.note(f"cp2k: {exc} ({step}) → retry with {nxt} from the last wavefunction{flag}")
                    continue
                raise ConvergenceError(f"{exc}; tried {', '.join(steps)}") from None
            if k > 0:
                run.note(f"cp2k: converged with {step}")
            _collect(workdir, k, result, run, step, atoms)
            result.recovery = run.recovery
            result.wall_time = time.perf_counter() - t0
            result.versions = {"cp2k": _version(executable(s))}
            result.extra["workdir"] = str(d)
            return result
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    raise AssertionError("unreachable")  # pragma: no cover


# ----------------------------------------------------------------------------- the backend


class CP2KBackend(Backend):
    """CP2K PBE (the paper's level): single points and CP2K's own GEO_OPT (:func:`run_cp2k`);
    inputs are validated before a batch job is submitted (:func:`precheck`)."""

    name = "cp2k"
    label = "CP2K"
    methods = ("PBE",)
    relaxes_with_ase = False

    def check(self, atoms: Atoms, spec: CalcSpec) -> None:
        cp2k_settings(spec)  # the rest is checked as the input is built (build_input_tree)

    def run(self, atoms: Atoms, spec: CalcSpec, workdir: Path | None = None) -> CalcResult:
        return run_cp2k(atoms, spec, workdir)

    def precheck(self, atoms: Atoms, spec: CalcSpec, directory: Path) -> None:
        precheck(atoms, spec, directory)

    def versions(self, spec: CalcSpec) -> dict[str, str]:
        return {"cp2k": _version(executable(cp2k_settings(spec)))}


#: the CP2K backend
CP2K = CP2KBackend()
