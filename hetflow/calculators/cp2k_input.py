"""CP2K input: the cp2k-input-tools tree of one attempt, its header, rendering, validation and files.

Part of the CP2K backend (:mod:`hetflow.calculators.cp2k`).  cp2k-input-tools is imported only
when an input is rendered.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ase import Atoms

import hetflow
from hetflow import atomic
from hetflow.calculators.base import CalcSpec
from hetflow.calculators.cp2k_box import PoissonChoice, choose_poisson
from hetflow.calculators.cp2k_preset import PAPER_PRESET, PROJECT, cp2k_settings, data_dir, kinds_for, ldos_groups
from hetflow.calculators.electrons import check_charge_multiplicity
from hetflow.errors import InputError

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
    tree, groups = build_input_tree(atoms, spec, attempt, wfn_restart, walltime, max_iter)
    text = input_header(atoms, spec, attempt, wfn_restart, walltime) + render_input(tree)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(d / f"{PROJECT}.inp", text, fsync=False)
    lists = parsed_ldos_lists(text)
    by_list = {tuple(i + 1 for i in idx): name for name, idx in groups.items()}
    order = [by_list[tuple(lst)] for lst in lists]
    poisson = choose_poisson(atoms, cp2k_settings(spec))
    atomic.write_atomic(d / "groups.json", json.dumps({"ldos_order": order, "groups": groups,
                                                       "poisson": poisson.to_dict()}), fsync=False)
    return d / f"{PROJECT}.inp"
