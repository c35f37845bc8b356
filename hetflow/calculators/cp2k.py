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
"""

from __future__ import annotations

import io
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
from ase.data import chemical_symbols
from ase.units import Bohr, Hartree

from hetflow.calculators import cp2k_restart as rst
from hetflow.calculators.base import Backend, CalcResult, CalcSpec, MOData
from hetflow.calculators.cp2k_box import PoissonChoice, choose_poisson
from hetflow.calculators.electrons import check_charge_multiplicity
from hetflow.calculators.recovery import CP2K_LADDER, CP2K_STEPS, ENERGY_AFFECTING, ladder_steps
from hetflow.errors import CalculationStopped, CalculatorError, ConvergenceError, InputError

log = logging.getLogger("hetflow.calculators.cp2k")

PAPER_PRESET: dict[str, Any] = {
    "xc": "PBE",
    "basis": "DZVP-MOLOPT-SR-GTH",
    "basis_file": "BASIS_MOLOPT",
    "potential_family": "GTH-PBE",
    "potential_file": "GTH_POTENTIALS",
    "cutoff": 400.0,
    "rel_cutoff": 60.0,
    "box": (52.0, 68.0, 52.0),
    "max_force": 4.5e-4,
}
CP2K_DEFAULTS: dict[str, Any] = {
    "preset": "paper",
    "max_scf": 50,
    "eps_scf": 1e-6,
    "scf": "ot",
    "nlumo": 20,
    "mpi_ranks": 2,
    "executable": "cp2k.psmp",
    "recovery": True,
}
_KNOWN = set(CP2K_DEFAULTS) | {"box", "vacuum", "cutoff", "max_force", "ldos_groups", "data_dir", "threads",
                               "poisson_solver"}
PROJECT = "hetflow"
_SYMBOLS = set(chemical_symbols[1:])


# ----------------------------------------------------------------------------- settings & data


def cp2k_settings(spec: CalcSpec) -> dict[str, Any]:
    """Settings merged over the defaults and the preset, validated."""
    s = spec.settings_dict
    unknown = set(s) - _KNOWN
    if unknown:
        raise InputError(f"unknown CP2K setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KNOWN))}")
    out = CP2K_DEFAULTS | s
    if out["preset"] != "paper":
        raise InputError(f"unknown CP2K preset {out['preset']!r}; available: paper")
    if out["scf"] not in ("ot", "diagonalization"):
        raise InputError(f"setting 'scf' must be 'ot' or 'diagonalization', got {out['scf']!r}")
    out.setdefault("cutoff", PAPER_PRESET["cutoff"])
    out.setdefault("max_force", PAPER_PRESET["max_force"])
    if "box" in s and "vacuum" in s:
        raise InputError("give either 'box' or 'vacuum', not both")
    box = out.get("box", PAPER_PRESET["box"])
    if len(box) != 3 or min(float(x) for x in box) <= 0:
        raise InputError(f"setting 'box' must be three positive lengths in Å, got {box!r}")
    out["box"] = tuple(float(x) for x in box)
    out.setdefault("poisson_solver", "auto")
    ladder_steps(out["recovery"], CP2K_LADDER, CP2K_STEPS)
    return out


def data_dir(settings: dict[str, Any]) -> Path:
    """Directory holding BASIS_MOLOPT and GTH_POTENTIALS."""
    cands = [settings.get("data_dir"), os.environ.get("CP2K_DATA_DIR"), "/usr/share/cp2k/data", "/usr/share/cp2k"]
    for c in cands:
        if c and (Path(c) / PAPER_PRESET["basis_file"]).is_file():
            return Path(c)
    raise CalculatorError(
        "CP2K data files (BASIS_MOLOPT, GTH_POTENTIALS) not found; install cp2k-data or set "
        "settings 'data_dir' / CP2K_DATA_DIR"
    )


def _entries(path: Path) -> dict[str, list[list[str]]]:
    """Element → list of name lists for every entry header in a CP2K basis/potential file."""
    out: dict[str, list[list[str]]] = {}
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in _SYMBOLS and any(c.isalpha() for c in parts[1]):
            out.setdefault(parts[0], []).append(parts[1:])
    return out


def kinds_for(symbols: list[str], ddir: Path) -> dict[str, dict[str, str]]:
    """``{element: {basis_set, potential}}`` with matching valence (``-qN``); InputError if absent."""
    basis = _entries(ddir / PAPER_PRESET["basis_file"])
    pots = _entries(ddir / PAPER_PRESET["potential_file"])
    out: dict[str, dict[str, str]] = {}
    for el in sorted(set(symbols)):
        names = next((n for n in basis.get(el, []) if PAPER_PRESET["basis"] in n), None)
        if names is None:
            raise InputError(
                f"no {PAPER_PRESET['basis']} basis for element {el} in {ddir / PAPER_PRESET['basis_file']}"
            )
        q = next((m.group(1) for n in names for m in [re.search(r"-q(\d+)$", n)] if m), None)
        pot = f"{PAPER_PRESET['potential_family']}-q{q}" if q else PAPER_PRESET["potential_family"]
        if not any(pot in n for n in pots.get(el, [])):
            raise InputError(f"no {pot} pseudopotential for element {el} in {ddir / PAPER_PRESET['potential_file']}")
        out[el] = {"basis_set": PAPER_PRESET["basis"], "potential": pot}
    return out


def ldos_groups(atoms: Atoms, settings: dict[str, Any]) -> dict[str, list[int]]:
    """Atom groups (0-based indices) for ``&LDOS`` lists: settings or the ``domain`` labels."""
    groups = settings.get("ldos_groups")
    if groups is None:
        if "domain" not in atoms.arrays:
            return {}
        dom = np.asarray(atoms.arrays["domain"]).astype(str)
        return {d: [int(i) for i in np.flatnonzero(dom == d)] for d in dict.fromkeys(dom)}
    if not isinstance(groups, dict) or not groups:
        raise InputError("settings 'ldos_groups' must map a group name to atom indices")
    out = {}
    for name, idx in groups.items():
        idx = [int(i) for i in idx]
        if not idx or min(idx) < 0 or max(idx) >= len(atoms):
            raise InputError(f"ldos group {name!r} has indices outside 0…{len(atoms) - 1}")
        out[str(name)] = idx
    return out


def box_for(atoms: Atoms, settings: dict[str, Any]) -> tuple[float, float, float]:
    """Box edges (Å) actually used (see :func:`hetflow.calculators.cp2k_box.choose_poisson`)."""
    return choose_poisson(atoms, settings).box


# ----------------------------------------------------------------------------- input


def scf_section(step: str, s: dict[str, Any], natoms: int, restart: bool) -> dict[str, Any]:
    """The ``&SCF`` section of one attempt (``step``: ``requested`` or a ladder step)."""
    diag = step in ("diagonalization", "more_steps", "smearing") or (
        step in ("requested", "restart_wfn") and s["scf"] == "diagonalization")
    max_scf = int(s["max_scf"]) * (3 if step == "more_steps" else 1)
    scf: dict[str, Any] = {"max_scf": max_scf, "eps_scf": float(s["eps_scf"]),
                           "scf_guess": "RESTART" if restart else "ATOMIC",
                           # the wavefunction after every SCF step (CP2K 2023.1 default: every 20th,
                           # input_cp2k_dft.F), so that a killed run resumes from where it was
                           "+print": {"+restart": {"+each": {"qs_scf": 1}, "backup_copies": 1}}}
    if diag:
        scf["added_mos"] = int(s["nlumo"]) if step != "smearing" else max(int(s["nlumo"]), int(0.2 * natoms) + 10)
        scf["+diagonalization"] = {"_": True, "algorithm": "STANDARD"}
        scf["+mixing"] = {"_": True, "method": "BROYDEN_MIXING", "alpha": 0.2, "nbroyden": 8}
        if step == "smearing":
            scf["+smear"] = {"_": True, "method": "FERMI_DIRAC", "electronic_temperature": 300.0}
    else:
        scf["+ot"] = {"_": True, "minimizer": "DIIS", "preconditioner": "FULL_SINGLE_INVERSE"}
        scf["+outer_scf"] = {"_": True, "max_scf": 10, "eps_scf": float(s["eps_scf"])}
    return scf


def energy_settings(s: dict[str, Any], poisson: PoissonChoice, step: str) -> dict[str, Any]:
    """The settings of one run that enter energy differences (compare rows with them)."""
    return {"xc": PAPER_PRESET["xc"], "basis": PAPER_PRESET["basis"], "potential": PAPER_PRESET["potential_family"],
            "cutoff_Ry": float(s["cutoff"]), "rel_cutoff_Ry": PAPER_PRESET["rel_cutoff"],
            "poisson_solver": poisson.solver, "eps_scf": float(s["eps_scf"]),
            "smearing_K": 300.0 if step == "smearing" else None}


def build_input_tree(atoms: Atoms, spec: CalcSpec, attempt: str = "requested",
                     wfn_restart: str | None = None, walltime: float | None = None,
                     max_iter: int | None = None) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The CP2K input as a cp2k-input-tools tree, and the LDOS groups in file order.

    ``walltime``: seconds for ``&GLOBAL WALLTIME`` (None: no limit); ``max_iter``: GEO_OPT
    steps left (default ``spec.max_steps``).
    """
    s = cp2k_settings(spec)
    check_charge_multiplicity(atoms.numbers, spec.charge, spec.multiplicity, valence=False)
    ddir = data_dir(s)
    symbols = atoms.get_chemical_symbols()
    kinds = kinds_for(symbols, ddir)
    poisson = choose_poisson(atoms, s)
    groups = ldos_groups(atoms, s)
    scf = scf_section(attempt, s, len(atoms), bool(wfn_restart))

    dft: dict[str, Any] = {
        "basis_set_file_name": [str(ddir / PAPER_PRESET["basis_file"])],
        "potential_file_name": str(ddir / PAPER_PRESET["potential_file"]),
        "charge": int(spec.charge),
        "multiplicity": int(spec.multiplicity),
        "uks": spec.multiplicity > 1,
        "+mgrid": {"cutoff": float(s["cutoff"]), "rel_cutoff": PAPER_PRESET["rel_cutoff"], "ngrids": 4},
        "+qs": {"eps_default": 1e-10, "method": "GPW"},
        "+poisson": {"periodic": "NONE", "poisson_solver": poisson.solver},
        "+scf": scf,
        "+xc": {"+xc_functional": {"_": PAPER_PRESET["xc"]}},
        "+print": {"+pdos": {"nlumo": int(s["nlumo"]), "add_last": "NUMERIC"}},
    }
    if wfn_restart:
        dft["wfn_restart_file_name"] = wfn_restart
    if groups:
        dft["+print"]["+pdos"]["+ldos"] = [{"list": [i + 1 for i in idx]} for idx in groups.values()]

    subsys = {
        "+cell": {"abc": list(poisson.box), "periodic": "NONE"},
        "+coord": {"*": [f"{el} {x:.10f} {y:.10f} {z:.10f}" for el, (x, y, z) in zip(symbols, atoms.positions)]},
        "+kind": [{"_": el, **kinds[el]} for el in kinds],
        "+topology": {"+center_coordinates": {"_": True}},
    }
    glob: dict[str, Any] = {"project_name": PROJECT, "run_type": "GEO_OPT" if spec.task == "relax" else "ENERGY_FORCE",
                            "print_level": "MEDIUM"}
    if walltime is not None:
        secs = max(1, int(walltime))
        glob["walltime"] = f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"  # HH:MM:SS
    tree: dict[str, Any] = {
        "+global": glob,
        "+force_eval": [{
            "method": "QUICKSTEP",
            "+dft": dft,
            "+subsys": subsys,
            "+print": {"+forces": {"_": "ON"}},
        }],
    }
    if spec.task == "relax":
        tree["+motion"] = {
            "+geo_opt": {"optimizer": "BFGS", "max_force": float(s["max_force"]),
                         "max_iter": int(spec.max_steps if max_iter is None else max_iter)},
            "+print": {"+trajectory": {"format": "XYZ"}},
        }
    return tree, groups


def input_header(atoms: Atoms, spec: CalcSpec, attempt: str, wfn_restart: str | None,
                 walltime: float | None) -> str:
    """Comment lines that open the input: method, box, Poisson solver and why, SCF start, walltime."""
    import hetflow

    s = cp2k_settings(spec)
    p = choose_poisson(atoms, s)
    lines = [
        f"hetflow {hetflow.__version__} — CP2K input, preset {s['preset']}: {PAPER_PRESET['xc']}, "
        f"{PAPER_PRESET['basis']}, {PAPER_PRESET['potential_family']}-qN, cutoff {float(s['cutoff']):g} Ry",
        f"model {atoms.get_chemical_formula()} ({len(atoms)} atoms), {spec.task}",
        f"box {' x '.join(f'{x:.3f}' for x in p.box)} Å, PERIODIC NONE, POISSON_SOLVER {p.solver}",
        f"why: {p.reason}",
        f"SCF attempt {attempt}" + (f", guess RESTART from {wfn_restart}" if wfn_restart else ", guess ATOMIC"),
        f"WALLTIME {walltime:.0f} s (allocation end minus margin)" if walltime is not None else "no WALLTIME limit",
    ]
    return "".join(f"# {ln}\n" for ln in lines)


def render_input(tree: dict[str, Any]) -> str:
    """Render a tree with cp2k-input-tools and validate it by parsing it back (InputError if invalid)."""
    from cp2k_input_tools.generator import CP2KInputGenerator
    from cp2k_input_tools.parser import CP2KInputParser

    try:
        text = "\n".join(CP2KInputGenerator().line_iter(tree)) + "\n"
        CP2KInputParser().parse(io.StringIO(text))
    except Exception as exc:  # noqa: BLE001 - the tools' own exception types vary
        raise InputError(f"CP2K input does not validate: {type(exc).__name__}: {exc}") from None
    return text


def parsed_ldos_lists(text: str) -> list[list[int]]:
    """The ``&LDOS LIST`` atom lists (1-based) in file order, read back with cp2k-input-tools."""
    from cp2k_input_tools.parser import CP2KInputParserSimplified

    tree = CP2KInputParserSimplified().parse(io.StringIO(text))
    fe = tree["force_eval"]
    fe = fe[0] if isinstance(fe, list) else fe
    ldos = fe.get("dft", {}).get("print", {}).get("pdos", {}).get("ldos", [])
    ldos = [ldos] if isinstance(ldos, dict) else ldos
    out = []
    for entry in ldos:
        v = entry["list"]
        v = v if isinstance(v, list) else [v]
        flat: list[int] = []

        def walk(x: Any) -> None:
            if isinstance(x, (list, tuple)):
                for y in x:
                    walk(y)
            elif isinstance(x, str):
                flat.extend(int(t) for t in x.split())
            else:
                flat.append(int(x))

        walk(v)
        out.append(flat)
    return out


def write_input(atoms: Atoms, spec: CalcSpec, directory: str | Path, attempt: str = "requested",
                wfn_restart: str | None = None, walltime: float | None = None,
                max_iter: int | None = None) -> Path:
    """Write ``<directory>/hetflow.inp`` (validated, with a header saying which box and Poisson
    solver and why) plus ``groups.json``; return the input path.

    Use this to prepare a run for an HPC machine; :func:`parse_output` reads the result back.
    """
    import json

    tree, groups = build_input_tree(atoms, spec, attempt, wfn_restart, walltime, max_iter)
    text = input_header(atoms, spec, attempt, wfn_restart, walltime) + render_input(tree)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{PROJECT}.inp").write_text(text)
    lists = parsed_ldos_lists(text)
    by_list = {tuple(i + 1 for i in idx): name for name, idx in groups.items()}
    order = [by_list[tuple(lst)] for lst in lists]
    poisson = choose_poisson(atoms, cp2k_settings(spec))
    (d / "groups.json").write_text(json.dumps({"ldos_order": order, "groups": groups,
                                               "poisson": poisson.to_dict()}))
    return d / f"{PROJECT}.inp"


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


# ----------------------------------------------------------------------------- parse

_ENERGY = re.compile(r"ENERGY\| Total FORCE_EVAL \( QS \) energy \[(?:a\.u\.|hartree)\]:\s+(-?\d+\.\d+(?:[EeDd][-+]?\d+)?)")
_SCF_OK = re.compile(r"\*\*\* SCF run converged in\s+(\d+) steps \*\*\*")


def _scf_failed(text: str) -> bool:
    return "SCF run NOT converged" in text


def _abort_message(text: str) -> str:
    """CP2K's own error line: the text inside its ``[ABORT]`` box, without the banner art,
    on one line, with the source location in brackets — e.g. ``Poisson solver for non cubic
    cells not yet implemented (pw/ps_wavelet_methods.F:103)``."""
    lines = text.splitlines()
    at = next((i for i in range(len(lines) - 1, -1, -1) if "[ABORT]" in lines[i]), None)
    if at is None:
        hits = [x.strip(" *") for x in lines if "ABORT" in x or "ERROR" in x]
        return re.sub(r"\s+", " ", hits[-1]).strip() if hits else ""
    top = next((i for i in range(at - 1, -1, -1) if re.fullmatch(r"\s*\*{20,}\s*", lines[i])), at - 1)
    bottom = next((i for i in range(at + 1, len(lines)) if re.fullmatch(r"\s*\*{20,}\s*", lines[i])), len(lines))
    parts = []
    for line in lines[top + 1:bottom]:
        inner = line.strip()
        inner = inner[1:] if inner.startswith("*") else inner
        inner = inner[:-1] if inner.endswith("*") else inner
        parts.append(inner[8:].strip())  # the first 8 columns hold the art (___ [ABORT] \___/ O/| …)
    words = " ".join(p for p in parts if p)
    m = re.search(r"\s*(\S+\.F:\d+)\s*$", words)
    if m:
        words = f"{words[:m.start()].strip()} ({m.group(1)})"
    return re.sub(r"\s+", " ", words).strip()


def _forces_blocks(text: str) -> list[np.ndarray]:
    """Every printed force block, Ha/Bohr (2023: 'ATOMIC FORCES in [a.u.]' / 'FORCES| Atomic forces')."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "ATOMIC FORCES in" in line or re.match(r"\s*FORCES\| Atomic forces", line):
            rows = []
            j = i + 1
            while j < len(lines) and ("SUM OF ATOMIC FORCES" not in lines[j] and "Sum of atomic forces" not in lines[j]
                                      and not re.search(r"FORCES\|\s+Sum", lines[j])):
                parts = lines[j].replace("FORCES|", "").split()
                if len(parts) >= 6 and parts[0].isdigit():
                    try:
                        rows.append([float(x) for x in parts[-3:]])
                    except ValueError:
                        pass
                j += 1
            if rows:
                blocks.append(np.asarray(rows))
            i = j
        i += 1
    return blocks


def _last_xyz_frame(path: Path, template: Atoms) -> Atoms:
    """``template`` with the positions of the last *complete* frame of a CP2K XYZ trajectory
    (a frame cut off by a kill is skipped); the template itself when there is none."""
    pos = rst.last_frame_positions(path, len(template))
    out = template.copy()
    if pos is not None:
        out.positions = pos
    return out


def read_pdos(directory: Path, groups_order: list[str]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Eigenvalues (eV), occupations and per-group MO fractions from CP2K's .pdos files.

    Kind files ``<project>-k<n>-1.pdos`` together cover every atom; each row is one MO (index,
    eigenvalue a.u., occupation, angular components).  The fraction of an MO on group g is
    Σ components(list g) / Σ components(all kinds).
    """
    kind_files = sorted(directory.glob(f"{PROJECT}-k*-1.pdos")) or sorted(directory.glob(f"{PROJECT}-ALPHA_k*-1.pdos"))
    if not kind_files:
        raise CalculatorError(f"no PDOS files in {directory}")

    def load(p: Path) -> np.ndarray:
        return np.atleast_2d(np.loadtxt(p, comments="#"))

    kinds = [load(p) for p in kind_files]
    eig = kinds[0][:, 1] * Hartree
    occ = kinds[0][:, 2]
    total = sum(k[:, 3:].sum(axis=1) for k in kinds)
    proj: dict[str, np.ndarray] = {}
    for n, name in enumerate(groups_order, start=1):
        f = directory / f"{PROJECT}-list{n}-1.pdos"
        if not f.exists():
            f = directory / f"{PROJECT}-ALPHA_list{n}-1.pdos"
        if f.exists():
            lst = load(f)
            proj[name] = lst[:, 3:].sum(axis=1) / np.where(total > 0, total, 1.0)
    return eig, occ, proj


def parse_output(directory: str | Path, atoms: Atoms, spec: CalcSpec) -> CalcResult:
    """Read a finished CP2K run in ``directory`` (``hetflow.out`` and friends) into a CalcResult.

    Raises ConvergenceError when the SCF did not converge, CalculatorError when the output is
    missing or incomplete.
    """
    import json

    d = Path(directory)
    out = d / f"{PROJECT}.out"
    if not out.exists():
        raise CalculatorError(f"no CP2K output {out}")
    text = out.read_text(errors="replace")
    reason = rst.stop_reason(text)
    if reason:
        raise CalculationStopped(f"CP2K output {out} ends at a {reason} stop; resume the run, do not read it")
    if _scf_failed(text):
        raise ConvergenceError("CP2K SCF run NOT converged")
    energies = _ENERGY.findall(text)
    if not energies:
        msg = _abort_message(text)
        raise CalculatorError(f"CP2K output {out} has no total energy" + (f": {msg}" if msg else ""))
    energy = float(energies[-1].replace("D", "E")) * Hartree
    blocks = _forces_blocks(text)
    forces = blocks[-1] * Hartree / Bohr if blocks and len(blocks[-1]) == len(atoms) else None
    final = atoms.copy()
    final.calc = None
    geo_ok = True
    if spec.task == "relax":
        pos = d / f"{PROJECT}-pos-1.xyz"
        if pos.exists():
            final = _last_xyz_frame(pos, final)
        geo_ok = "GEOMETRY OPTIMIZATION COMPLETED" in text
    scf_steps = sum(int(x) for x in _SCF_OK.findall(text)) or None
    opt_steps = None
    if spec.task == "relax":
        it = re.findall(r"OPTIMIZATION STEP:\s+(\d+)", text)
        opt_steps = int(it[-1]) if it else 0
    mo = None
    order: list[str] = []
    gj = d / "groups.json"
    if gj.exists():
        order = json.loads(gj.read_text())["ldos_order"]
    try:
        eig, occ, proj = read_pdos(d, order)
        mo = MOData(eigenvalues=eig, occupations=occ, projections=proj or None)
    except CalculatorError:
        if spec.want_mo:
            raise
    return CalcResult(
        energy=energy, forces=forces, atoms=final, converged=geo_ok, spec=spec,
        scf_steps=scf_steps, opt_steps=opt_steps, mo=mo,
        extra={"energy_hartree": float(energies[-1].replace("D", "E"))},
    )


# ----------------------------------------------------------------------------- the backend


class CP2KBackend(Backend):
    """CP2K PBE (the paper's level): single points and CP2K's own GEO_OPT (:func:`run_cp2k`);
    inputs are validated before a batch job is submitted (:func:`precheck`)."""

    name = "cp2k"
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
