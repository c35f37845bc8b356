"""CP2K walltime and resumption: never lose a job's work to the scheduler's clock or a kill.

* **Walltime.**  A batch job exports ``HETFLOW_JOB_DEADLINE`` (epoch seconds at which the
  allocation ends) and ``HETFLOW_JOB_WALLTIME`` (its length, s).  :func:`cp2k_walltime` turns
  that into CP2K's ``&GLOBAL WALLTIME`` = time left − margin, margin =
  ``HETFLOW_WALLTIME_MARGIN`` or max(120 s, 5 % of the allocation).  CP2K checks it only at its
  own checkpoints (every SCF step and geometry step), so the margin must cover one of them plus
  writing the restart files.  ``HETFLOW_CP2K_WALLTIME`` (s) sets the CP2K walltime directly.
  Neither enters the cache key: they are resources, not physics.
* **Stops.**  CP2K prints ``*** SCF run terminated - exceeded requested execution time`` (or
  ``GEO``/``… by external request``) and ends; :func:`stop_reason` recognises it, and hetflow
  raises :class:`~hetflow.errors.CalculationStopped` — no result, no error: the task is
  resubmitted and resumes.
* **Resumption.**  An attempt directory that holds an output but no ``result.ok`` was
  interrupted (walltime, ``scancel``/kill, node loss, truncated output).  Before rerunning,
  :func:`archive_segment` moves that output, the trajectory and the wavefunction into
  ``segment-<n>/``; the new run starts from the last ``-pos-1.xyz`` frame (relaxations) and
  the last ``-RESTART.wfn`` (``SCF_GUESS RESTART``), and the geometry-step budget counts the
  steps already done.  Each resumption is one entry of ``CalcResult.extra["restarts"]`` and
  one line of ``CalcResult.recovery`` (the store keeps both in the row's provenance).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hetflow.errors import CalculationStopped

PROJECT = "hetflow"
DEADLINE_ENV = "HETFLOW_JOB_DEADLINE"
JOB_WALLTIME_ENV = "HETFLOW_JOB_WALLTIME"
MARGIN_ENV = "HETFLOW_WALLTIME_MARGIN"
DIRECT_ENV = "HETFLOW_CP2K_WALLTIME"
#: do not start CP2K with less than this many seconds of walltime left
MIN_USEFUL = 60.0

_STOP = re.compile(r"\*\*\* (\w+) run terminated (- exceeded requested execution time|by external request)")
_SCF_ITER = re.compile(r"^\s+\d+\s+(?:OT\s+\S+|P_Mix/Diag\.|Broy\./Diag\.|Pulay/Diag\.|Diag\.|DIIS/Diag\.|"
                       r"Mixing/Diag\.|NoMix/Diag\.)\s", re.M)


def cp2k_walltime(now: float | None = None) -> float | None:
    """Seconds for ``&GLOBAL WALLTIME`` from the environment, or None (no limit known).

    Raises CalculationStopped when less than :data:`MIN_USEFUL` seconds would be left.
    """
    direct = os.environ.get(DIRECT_ENV)
    if direct:
        return float(direct)
    deadline = os.environ.get(DEADLINE_ENV)
    if not deadline:
        return None
    now = time.time() if now is None else now
    total = float(os.environ.get(JOB_WALLTIME_ENV) or 0.0)
    margin = float(os.environ.get(MARGIN_ENV) or max(120.0, 0.05 * total))
    left = float(deadline) - now - margin
    if left < MIN_USEFUL:
        raise CalculationStopped(f"walltime: only {max(0.0, float(deadline) - now):.0f} s left in the allocation "
                                 f"(margin {margin:.0f} s); not starting CP2K — resubmit to resume")
    return left


def stop_reason(text: str) -> str | None:
    """``"walltime"`` / ``"external request"`` when CP2K stopped itself early, else None."""
    m = _STOP.search(text)
    if not m:
        return None
    return "walltime" if "exceeded" in m.group(2) else "external request"


def scf_iterations(text: str) -> int:
    """SCF iterations printed in an output (converged or not, finished or cut off)."""
    return len(_SCF_ITER.findall(text))


def geo_steps(text: str) -> int:
    """Completed geometry-optimisation steps in an output (CP2K prints ``OPTIMIZATION STEP: n``
    when step n starts; it is complete once the run ended normally or step n + 1 started)."""
    it = re.findall(r"OPTIMIZATION STEP:\s+(\d+)", text)
    if not it:
        return 0
    ended = ("GEOMETRY OPTIMIZATION COMPLETED" in text or "MAXIMUM NUMBER OF OPTIMIZATION STEPS" in text)
    return int(it[-1]) - (0 if ended else 1)


def warnings(text: str) -> list[str]:
    """CP2K's ``*** WARNING in file:line :: message ***`` lines, deduplicated, in order."""
    out: list[str] = []
    for m in re.finditer(r"\*\*\* WARNING in (\S+) :: (.*?)\*\*\*[ \t]*\n((?:[ \t]*\*\*\* (?!WARNING in).*?\*\*\*[ \t]*\n)*)",
                         text):
        more = " ".join(x.strip(" *") for x in m.group(3).splitlines())
        msg = re.sub(r"\s+", " ", f"{m.group(2)} {more}").strip() + f" ({m.group(1)})"
        if "number of MPI ranks" in msg:  # DBCSR's performance hint on 2 ranks, not about the result
            continue
        if msg not in out:
            out.append(msg)
    return out


@dataclass
class Segment:
    """One interrupted run of an attempt, archived in ``<attempt>/segment-<n>/``."""

    index: int
    directory: Path
    reason: str  # walltime | external request | killed or truncated
    scf_iterations: int
    geo_steps: int
    has_wfn: bool
    frames: int

    @property
    def wfn(self) -> Path:
        return self.directory / f"{PROJECT}-RESTART.wfn"

    @property
    def trajectory(self) -> Path:
        return self.directory / f"{PROJECT}-pos-1.xyz"


def _frames(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0
    n, i = 0, 0
    while i < len(lines):
        try:
            nat = int(lines[i].split()[0])
        except (ValueError, IndexError):
            break
        if i + 2 + nat > len(lines):
            break  # a frame cut off by the kill
        n += 1
        i += 2 + nat
    return n


def last_frame_positions(path: Path, natoms: int):
    """Positions (Å) of the last complete frame with ``natoms`` atoms in an XYZ file, or None."""
    import numpy as np

    if not path.exists():
        return None
    lines = path.read_text(errors="replace").splitlines()
    last, i = None, 0
    while i < len(lines):
        try:
            nat = int(lines[i].split()[0])
        except (ValueError, IndexError):
            break
        block = lines[i + 2:i + 2 + nat]
        if len(block) < nat:
            break
        try:
            xyz = np.array([[float(v) for v in ln.split()[1:4]] for ln in block])
        except ValueError:
            break
        if nat == natoms and xyz.shape == (natoms, 3):
            last = xyz
        i += 2 + nat
    return last


def segments(attempt: Path) -> list[Segment]:
    """Archived segments of an attempt, oldest first."""
    out = []
    for d in sorted(attempt.glob("segment-*"), key=lambda p: int(p.name.split("-")[1])):
        text = (d / f"{PROJECT}.out").read_text(errors="replace") if (d / f"{PROJECT}.out").exists() else ""
        out.append(Segment(int(d.name.split("-")[1]), d, (d / "reason").read_text().strip()
                           if (d / "reason").exists() else "unknown", scf_iterations(text), geo_steps(text),
                           (d / f"{PROJECT}-RESTART.wfn").exists(), _frames(d / f"{PROJECT}-pos-1.xyz")))
    return out


def archive_segment(attempt: Path, reason: str | None = None) -> Segment:
    """Move the interrupted run's output, trajectory and wavefunction into ``segment-<n>/``
    (``reason``: why it is archived; default read from the output)."""
    n = len(list(attempt.glob("segment-*"))) + 1
    d = attempt / f"segment-{n}"
    d.mkdir()
    out = attempt / f"{PROJECT}.out"
    text = out.read_text(errors="replace") if out.exists() else ""
    reason = reason or stop_reason(text) or "killed or truncated (no end of run in the output)"
    (d / "reason").write_text(reason + "\n")
    for name in (f"{PROJECT}.out", f"{PROJECT}-pos-1.xyz", f"{PROJECT}-RESTART.wfn", f"{PROJECT}.inp"):
        if (attempt / name).exists():
            shutil.move(str(attempt / name), d / name)
    # a wavefunction file cut short by the kill is worse than none: CP2K aborts reading it
    wfn = d / f"{PROJECT}-RESTART.wfn"
    if wfn.exists() and wfn.stat().st_size == 0:
        wfn.unlink()
    for stale in attempt.glob(f"{PROJECT}-RESTART.wfn.bak-*"):
        stale.unlink()
    return segments(attempt)[-1]


def finished(text: str) -> bool:
    """CP2K reached its normal end (``PROGRAM ENDED AT``)."""
    return "PROGRAM ENDED AT" in text


__all__ = ["CalculationStopped", "Segment", "archive_segment", "cp2k_walltime", "finished", "geo_steps",
           "scf_iterations", "segments", "stop_reason"]
