"""Workflow status from the work directory (read-only): manifest, job files, live queue."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from hetflow.errors import WorkflowError
from hetflow.workflows._engine import load_manifest
from hetflow.workflows._taskdir import TaskDir, read_json, tail


def _live_states(kind: str, job_ids: list[str]) -> dict[str, str] | None:
    from hetflow.workflows.executors import SCHEDULER_CLASSES

    cmd = {"slurm": "squeue", "pbs": "qstat", "lsf": "bjobs"}.get(kind)
    if not cmd or not shutil.which(cmd) or not job_ids:
        return None
    try:
        return SCHEDULER_CLASSES[kind]().live(job_ids)
    except WorkflowError:
        return None


def collect_status(workdir: str | Path, lines: int = 5):
    """(rows, notes, header): rows = (task, state, job id, key, message)."""
    workdir = Path(workdir)
    man = load_manifest(workdir)
    if man is None:
        raise WorkflowError(f"no workflow state in {workdir} (nothing run or submitted yet)")
    kind = man.get("executor", "local")
    tasks = man["tasks"]
    jobs = {}
    for name, t in tasks.items():
        if t.get("dir"):
            info = read_json(workdir / t["dir"] / "job.json") or {}
            if info.get("job_id"):
                jobs[name] = str(info["job_id"])
    live = _live_states(kind, [jobs[n] for n, t in tasks.items() if n in jobs and t["state"] == "running"])
    rows, notes = [], []
    for name, t in tasks.items():
        state, msg = t["state"], t.get("message", "")
        job = jobs.get(name, "")
        td = TaskDir(workdir / t["dir"]) if t.get("dir") else None
        if state == "running" and td is not None:
            if td.result_for(t.get("key") or "") is not None:
                state, msg = "finished", "result file present, not yet ingested (rerun run/submit)"
            elif live is not None and job:
                if job in live:
                    state = live[job].lower()
                else:
                    state, msg = "vanished", "job left the queue without a result (rerun submit to resubmit)"
        rows.append((name, state, job, (t.get("key") or "")[:12], msg.splitlines()[0] if msg else ""))
        if td is not None and state in ("failed", "vanished"):
            info = td.job_info()
            block = [f"--- {name} ({state})"]
            err = read_json(td.error)
            if err:
                block.append(f"  error: {err.get('message', '')}")
            for loss in info.get("losses", []):
                block.append("  lost: " + loss.replace("\n", "\n  "))
            for label, path in (("stdout", td.stdout), ("stderr", td.stderr)):
                text = tail(path, lines).rstrip()
                if text:
                    block.append(f"  {label} tail ({path}):\n" + "\n".join("    " + ln for ln in text.splitlines()))
            notes.append("\n".join(block))
    age = time.time() - man.get("updated", time.time())
    header = f"workflow {man['name']} ({kind}); last controller update {age:.0f} s ago: {man.get('summary', '')}"
    return rows, notes, header
