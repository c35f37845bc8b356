"""Batch-system adapters: submit a job script, list live jobs, describe a job (Slurm, PBS, LSF).

Shared by :class:`~hetflow.workflows.executors.BatchExecutor`,
:class:`~hetflow.workflows.packing.PackedBatchExecutor` and ``hetflow status``; it imports no
executor, so the arrows run one way (executors → packing → schedulers, executors → schedulers).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from hetflow.errors import WorkflowError


def _run(cmd: list[str], cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise WorkflowError(f"scheduler command {cmd[0]!r} not found on PATH") from exc
    except subprocess.TimeoutExpired:
        raise WorkflowError(f"scheduler command {cmd[0]!r} did not answer within 60 s") from None


class Scheduler:
    """Adapter for one batch system: submit a script, list live jobs, describe a job."""

    name = ""
    commands: tuple[str, ...] = ()  # programs that must be on PATH (submit, query)

    def submit(self, script: Path, after: tuple[str, ...] = ()) -> str:  # pragma: no cover - interface
        """Submit ``script``; ``after``: job ids that must end successfully first (scheduler-side
        dependency; a job whose dependency failed is removed by the scheduler)."""
        raise NotImplementedError

    def live(self, job_ids: list[str]) -> dict[str, str]:  # pragma: no cover - interface
        """Job id → state for jobs still known to the queue as not finished."""
        raise NotImplementedError

    def describe(self, job_id: str) -> str:
        return ""


class Slurm(Scheduler):
    name = "slurm"
    commands = ("sbatch", "squeue")
    _FINISHED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                 "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}

    def submit(self, script: Path, after: tuple[str, ...] = ()) -> str:
        dep = [f"--dependency=afterok:{':'.join(after)}", "--kill-on-invalid-dep=yes"] if after else []
        p = _run(["sbatch", "--parsable", *dep, script.name], cwd=script.parent)
        if p.returncode != 0:
            raise WorkflowError(f"sbatch failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}")
        return p.stdout.strip().split(";")[0]

    def live(self, job_ids: list[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        p = _run(["squeue", "-h", "-o", "%i %T", "-j", ",".join(job_ids)])
        if p.returncode != 0 and "Invalid job id" not in p.stderr:
            raise WorkflowError(f"squeue failed: {p.stderr.strip()}")
        out = {}
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] not in self._FINISHED:
                out[parts[0]] = parts[1]
        return out

    def describe(self, job_id: str) -> str:
        p = _run(["scontrol", "show", "job", job_id])
        if p.returncode != 0:
            return "no longer known to slurmctld"
        m = dict(re.findall(r"(JobState|Reason|ExitCode)=(\S+)", p.stdout))
        return ", ".join(f"{k}={v}" for k, v in m.items())


class PBS(Scheduler):
    name = "pbs"
    commands = ("qsub", "qstat")

    def submit(self, script: Path, after: tuple[str, ...] = ()) -> str:
        dep = ["-W", f"depend=afterok:{':'.join(after)}"] if after else []
        p = _run(["qsub", *dep, script.name], cwd=script.parent)
        if p.returncode != 0:
            raise WorkflowError(f"qsub failed: {p.stderr.strip()}")
        return p.stdout.strip()

    def live(self, job_ids: list[str]) -> dict[str, str]:
        out = {}
        for jid in job_ids:
            p = _run(["qstat", "-f", jid])
            m = re.search(r"job_state = (\w)", p.stdout)
            if p.returncode == 0 and m and m.group(1) not in ("C", "F", "X"):
                out[jid] = m.group(1)
        return out


class LSF(Scheduler):
    name = "lsf"
    commands = ("bsub", "bjobs")

    def submit(self, script: Path, after: tuple[str, ...] = ()) -> str:
        dep = ["-w", " && ".join(f"done({j})" for j in after)] if after else []
        p = _run(["bsub", *dep], cwd=script.parent, stdin=script.read_text())
        m = re.search(r"Job <(\d+)>", p.stdout)
        if p.returncode != 0 or not m:
            raise WorkflowError(f"bsub failed: {(p.stderr or p.stdout).strip()}")
        return m.group(1)

    def live(self, job_ids: list[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        p = _run(["bjobs", "-noheader", "-o", "jobid stat", *job_ids])
        out = {}
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] not in ("DONE", "EXIT"):
                out[parts[0]] = parts[1]
        return out


SCHEDULER_CLASSES = {"slurm": Slurm, "pbs": PBS, "lsf": LSF}


def make_scheduler(kind: str) -> Scheduler:
    """The adapter for ``kind`` (slurm, pbs, lsf); an unknown name is one clear error."""
    if kind not in SCHEDULER_CLASSES:
        raise WorkflowError(f"unknown scheduler {kind!r}; choose one of {', '.join(SCHEDULER_CLASSES)}")
    return SCHEDULER_CLASSES[kind]()


def require_commands(sched: Scheduler) -> None:
    """Fail before any task directory or job script is written when the batch system's
    programs are not on PATH."""
    import shutil

    missing = [c for c in sched.commands if shutil.which(c) is None]
    if missing:
        raise WorkflowError(f"scheduler command(s) {', '.join(missing)} not found on PATH; "
                            f"is {sched.name} installed (or its module loaded)?")
