"""CP2K PBE backend: inputs built and validated with cp2k-input-tools, run, parsed.

The ``"paper"`` preset is the published method (SCIENCE.md): PBE, GTH-PBE pseudopotentials,
DZVP-MOLOPT-SR-GTH basis, plane-wave cutoff 400 Ry, non-periodic box (``PERIODIC NONE``,
``WAVELET`` Poisson solver) of 52 × 68 × 52 Å — or, with ``settings["vacuum"]`` (Å), a box sized
to the model plus that vacuum on each side — and, for ``task="relax"``, a CP2K ``GEO_OPT`` to a
maximum force of 4.5e-4 Ha/Bohr (BFGS).

Settings (``spec.settings``):

================== ============================================================ ===============
key                 meaning                                                      default
================== ============================================================ ===============
``preset``          only ``"paper"``                                             ``"paper"``
``box``             box edges a, b, c in Å                                       52, 68, 52
``vacuum``          Å of vacuum each side: box = model extent + 2·vacuum         (use ``box``)
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

Recovery ladder (only for "SCF run NOT converged"): ``diagonalization`` (OT → diagonalisation with
Fermi–Dirac smearing at 300 K, 20 % extra MOs and Broyden mixing α = 0.2), ``more_steps`` (same with
3× ``max_scf``), ``restart_wfn`` (same, starting from the last attempt's ``-RESTART.wfn``).
Every attempt writes ``<workdir>/attempt-<k>/`` with its own input and output.

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

from hetflow.calculators.base import CalcResult, CalcSpec, MOData
from hetflow.calculators.electrons import check_charge_multiplicity
from hetflow.calculators.recovery import CP2K_LADDER, ladder_steps
from hetflow.errors import CalculatorError, ConvergenceError, InputError

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
_KNOWN = set(CP2K_DEFAULTS) | {"box", "vacuum", "cutoff", "max_force", "ldos_groups", "data_dir", "threads"}
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
    ladder_steps(out["recovery"], CP2K_LADDER)
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
    """Box edges (Å): ``vacuum`` → extent + 2·vacuum, else ``box``; InputError when the model does not fit."""
    extent = atoms.positions.max(axis=0) - atoms.positions.min(axis=0) if len(atoms) else np.zeros(3)
    if settings.get("vacuum") is not None:
        vac = float(settings["vacuum"])
        if vac <= 0:
            raise InputError(f"setting 'vacuum' must be > 0 Å, got {vac}")
        return tuple(float(x) for x in extent + 2 * vac)  # type: ignore[return-value]
    box = np.asarray(settings["box"], dtype=float)
    if np.any(extent + 4.0 > box):
        raise InputError(
            f"model extent {np.round(extent, 1).tolist()} Å does not fit the box {box.tolist()} Å with "
            "2 Å vacuum each side; enlarge 'box' or use 'vacuum'"
        )
    return tuple(float(x) for x in box)  # type: ignore[return-value]


# ----------------------------------------------------------------------------- input


def build_input_tree(atoms: Atoms, spec: CalcSpec, attempt: str = "requested",
                     wfn_restart: str | None = None) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The CP2K input as a cp2k-input-tools tree, and the LDOS groups in file order."""
    s = cp2k_settings(spec)
    check_charge_multiplicity(atoms.numbers, spec.charge, spec.multiplicity, valence=False)
    ddir = data_dir(s)
    symbols = atoms.get_chemical_symbols()
    kinds = kinds_for(symbols, ddir)
    box = box_for(atoms, s)
    groups = ldos_groups(atoms, s)

    diag = attempt != "requested" or s["scf"] == "diagonalization"
    max_scf = int(s["max_scf"]) * (3 if attempt in ("more_steps", "restart_wfn") else 1)
    scf: dict[str, Any] = {"max_scf": max_scf, "eps_scf": float(s["eps_scf"]),
                           "scf_guess": "RESTART" if wfn_restart else "ATOMIC"}
    if diag:
        scf["added_mos"] = max(int(s["nlumo"]), int(0.2 * len(atoms)) + 10)
        scf["+diagonalization"] = {"_": True, "algorithm": "STANDARD"}
        scf["+smear"] = {"_": True, "method": "FERMI_DIRAC", "electronic_temperature": 300.0}
        scf["+mixing"] = {"_": True, "method": "BROYDEN_MIXING", "alpha": 0.2, "nbroyden": 8}
    else:
        scf["+ot"] = {"_": True, "minimizer": "DIIS", "preconditioner": "FULL_SINGLE_INVERSE"}
        scf["+outer_scf"] = {"_": True, "max_scf": 10, "eps_scf": float(s["eps_scf"])}

    dft: dict[str, Any] = {
        "basis_set_file_name": [str(ddir / PAPER_PRESET["basis_file"])],
        "potential_file_name": str(ddir / PAPER_PRESET["potential_file"]),
        "charge": int(spec.charge),
        "multiplicity": int(spec.multiplicity),
        "uks": spec.multiplicity > 1,
        "+mgrid": {"cutoff": float(s["cutoff"]), "rel_cutoff": PAPER_PRESET["rel_cutoff"], "ngrids": 4},
        "+qs": {"eps_default": 1e-10, "method": "GPW"},
        "+poisson": {"periodic": "NONE", "poisson_solver": "WAVELET"},
        "+scf": scf,
        "+xc": {"+xc_functional": {"_": PAPER_PRESET["xc"]}},
        "+print": {"+pdos": {"nlumo": int(s["nlumo"]), "add_last": "NUMERIC"}},
    }
    if wfn_restart:
        dft["wfn_restart_file_name"] = wfn_restart
    if groups:
        dft["+print"]["+pdos"]["+ldos"] = [{"list": [i + 1 for i in idx]} for idx in groups.values()]

    subsys = {
        "+cell": {"abc": list(box), "periodic": "NONE"},
        "+coord": {"*": [f"{el} {x:.10f} {y:.10f} {z:.10f}" for el, (x, y, z) in zip(symbols, atoms.positions)]},
        "+kind": [{"_": el, **kinds[el]} for el in kinds],
        "+topology": {"+center_coordinates": {"_": True}},
    }
    tree: dict[str, Any] = {
        "+global": {"project_name": PROJECT, "run_type": "GEO_OPT" if spec.task == "relax" else "ENERGY_FORCE",
                    "print_level": "MEDIUM"},
        "+force_eval": [{
            "method": "QUICKSTEP",
            "+dft": dft,
            "+subsys": subsys,
            "+print": {"+forces": {"_": "ON"}},
        }],
    }
    if spec.task == "relax":
        tree["+motion"] = {
            "+geo_opt": {"optimizer": "BFGS", "max_force": float(s["max_force"]), "max_iter": int(spec.max_steps)},
            "+print": {"+trajectory": {"format": "XYZ"}},
        }
    return tree, groups


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
                wfn_restart: str | None = None) -> Path:
    """Write ``<directory>/hetflow.inp`` (validated) plus ``groups.json``; return the input path.

    Use this to prepare a run for an HPC machine; :func:`parse_output` reads the result back.
    """
    import json

    tree, groups = build_input_tree(atoms, spec, attempt, wfn_restart)
    text = render_input(tree)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{PROJECT}.inp").write_text(text)
    lists = parsed_ldos_lists(text)
    by_list = {tuple(i + 1 for i in idx): name for name, idx in groups.items()}
    order = [by_list[tuple(lst)] for lst in lists]
    (d / "groups.json").write_text(json.dumps({"ldos_order": order, "groups": groups}))
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


def run_cp2k(atoms: Atoms, spec: CalcSpec, workdir: Path | None = None) -> CalcResult:
    """Write, run and parse CP2K for ``spec`` (single point or GEO_OPT), with the recovery ladder."""
    s = cp2k_settings(spec)
    cmd_probe = command(s)  # missing executable: fail before writing anything
    del cmd_probe
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="hetflow-cp2k-")
        workdir = Path(tmp)
    workdir.mkdir(parents=True, exist_ok=True)
    steps = ["requested"] + ladder_steps(s["recovery"], CP2K_LADDER)
    recovery: list[str] = []
    t0 = time.perf_counter()
    start = atoms.copy()
    wfn: str | None = None
    try:
        for k, step in enumerate(steps):
            d = workdir / f"attempt-{k}"
            done = d / "result.ok"
            write_input(start, spec, d, step, wfn if step == "restart_wfn" else None)
            if not done.exists():
                cmd = command(s)
                log.info("CP2K %s (%s) in %s: %s", spec.task, step, d, " ".join(cmd))
                proc = subprocess.run(cmd, cwd=d, env=_env(s), capture_output=True, text=True)
                out_text = (d / f"{PROJECT}.out").read_text(errors="replace") if (d / f"{PROJECT}.out").exists() else ""
                if proc.returncode != 0 and not _scf_failed(out_text):
                    msg = _abort_message(out_text + proc.stdout + proc.stderr) or f"exit status {proc.returncode}"
                    raise CalculatorError(f"CP2K failed in {d}: {msg}")
            try:
                result = parse_output(d, start, spec)
            except ConvergenceError as exc:
                restart = d / f"{PROJECT}-RESTART.wfn"
                wfn = str(restart) if restart.exists() else wfn
                geo = d / f"{PROJECT}-pos-1.xyz"
                if spec.task == "relax" and geo.exists():
                    start = _last_xyz_frame(geo, start)
                if k + 1 < len(steps):
                    recovery.append(f"cp2k: {exc} ({step}) → retry with {steps[k + 1]}")
                    log.warning(recovery[-1])
                    continue
                raise ConvergenceError(f"{exc}; tried {', '.join(steps)}") from None
            done.write_text("ok\n")
            if k > 0:
                recovery.append(f"cp2k: converged with {step}")
            result.recovery = recovery
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
    """The message inside CP2K's ABORT box, on one line."""
    m = re.search(r"\[ABORT\][^\n]*\n(.*?)\n\s*\*\s*\*{5,}", text, re.S)
    if not m:
        lines = [x.strip(" *") for x in text.splitlines() if "ABORT" in x or "ERROR" in x]
        return lines[-1] if lines else ""
    body = " ".join(x.strip(" *\\|/") for x in m.group(1).splitlines())
    return re.sub(r"\s+", " ", body).strip()


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
    from ase.io import read

    frame = read(str(path), index=-1)
    out = template.copy()
    out.positions = frame.positions
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
