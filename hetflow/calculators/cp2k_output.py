"""CP2K output: energies, forces, SCF and geometry steps, PDOS-based MO data, CP2K's own error line.

Part of the CP2K backend (:mod:`hetflow.calculators.cp2k`).  Units out: eV, eV/Å, Å.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from hetflow.calculators import cp2k_restart as rst
from hetflow.calculators.base import CalcResult, CalcSpec, MOData
from hetflow.calculators.cp2k_preset import PROJECT
from hetflow.errors import CalculationStopped, CalculatorError, ConvergenceError

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
