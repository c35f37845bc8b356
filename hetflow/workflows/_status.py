"""Workflow status from the work directory (read-only): manifest, job files, live queue."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import re

from hetflow import validate
from hetflow.errors import WorkflowError
from hetflow.workflows._engine import load_manifest
from hetflow.workflows._taskdir import TaskDir, read_json_dict, tail

_DIR = re.compile(r"tasks/[A-Za-z0-9._-]+")


def _text(v, default: str = "") -> str:
    return validate.printable(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else default


def _tasks(man: dict, workdir: Path) -> dict[str, dict]:
    """The manifest's task entries, each checked (a damaged or foreign workflow.json is an
    error naming the file, not a traceback)."""
    tasks = man.get("tasks")
    if not isinstance(tasks, dict):
        raise WorkflowError(f"{workdir / 'workflow.json'} is damaged (no task table); rerun run/submit to rewrite it")
    out = {}
    for name, t in tasks.items():
        if not isinstance(name, str) or not isinstance(t, dict):
            raise WorkflowError(f"{workdir / 'workflow.json'} is damaged (task entry {validate.shown(name)})")
        d = t.get("dir")
        out[name] = {"state": _text(t.get("state"), "unknown"), "message": _text(t.get("message")),
                     "key": _text(t.get("key")), "dir": d if isinstance(d, str) and _DIR.fullmatch(d) else None}
    return out


def _live_states(kind: str, job_ids: list[str]) -> dict[str, str] | None:
    from hetflow.workflows.schedulers import SCHEDULER_CLASSES

    cmd = {"slurm": "squeue", "pbs": "qstat", "lsf": "bjobs"}.get(kind)
    if not cmd or not shutil.which(cmd) or not job_ids:
        return None
    try:
        return SCHEDULER_CLASSES[kind]().live(job_ids)
    except WorkflowError:
        return None


def _allocation(td: TaskDir, info: dict) -> str:
    """Which allocation a task ran (runs) in: ``pack-0002 task 3/6, slot 1 on node7``."""
    if not info.get("pack"):
        return ""
    alloc = read_json_dict(td.root / "allocation.json") or {}
    txt = f"{info['pack']} task {info.get('pack_index')}/{info.get('pack_size')}"
    if alloc.get("job_id") == info.get("job_id") or (alloc and not alloc.get("job_id")):
        txt += f", slot {alloc.get('slot')} on {alloc.get('host')}"
        if alloc.get("exit") is not None:
            txt += f", exit {alloc['exit']}"
    if isinstance(info.get("restarts"), list) and info["restarts"]:
        txt += f", {len(info['restarts'])} walltime restart(s)"
    return txt


def collect_status(workdir: str | Path, lines: int = 5):
    """(rows, notes, header): rows = (task, state, job id, key, message)."""
    workdir = Path(workdir)
    man = load_manifest(workdir)
    if man is None:
        raise WorkflowError(f"no workflow state in {workdir} (nothing run or submitted yet)")
    kind = man.get("executor", "local")
    kind = kind if kind in ("local", "dask", "slurm", "pbs", "lsf") else "unknown"
    tasks = _tasks(man, workdir)
    jobs = {}
    for name, t in tasks.items():
        if t.get("dir"):
            info = read_json_dict(workdir / t["dir"] / "job.json") or {}
            jid = info.get("job_id")
            if isinstance(jid, (str, int)) and not isinstance(jid, bool) and re.fullmatch(r"[\w.\[\]-]+", str(jid)):
                jobs[name] = str(jid)
    infos = {n: read_json_dict(workdir / t["dir"] / "job.json") or {} for n, t in tasks.items() if t.get("dir")}
    chained = {n for n, t in tasks.items() if t["state"] == "pending" and infos.get(n, {}).get("chained")}
    live = _live_states(kind, sorted({jobs[n] for n, t in tasks.items() if n in jobs
                                      and (t["state"] == "running" or n in chained)}))
    rows, notes = [], []
    for name, t in tasks.items():
        state, msg = t["state"], t.get("message", "")
        job = jobs.get(name, "")
        td = TaskDir(workdir / t["dir"]) if t.get("dir") else None
        where = validate.printable(_allocation(td, infos.get(name, {}))) if td is not None else ""
        if name in chained and td is not None:
            after_ids = infos[name].get("after")
            after = ",".join(map(str, after_ids)) if isinstance(after_ids, list) else ""
            if td.result.exists():
                state, msg = "finished", "chain link finished (rerun submit to ingest)"
            elif live is not None and job in live:
                state, msg = live[job].lower(), f"chained after job {after} (scheduler dependency)"
        if state == "running" and td is not None:
            if td.result_for(t.get("key") or "") is not None:
                state, msg = "finished", "result file present, not yet ingested (rerun run/submit)"
            elif live is not None and job:
                if job in live:
                    state = live[job].lower()
                else:
                    state, msg = "vanished", "job left the queue without a result (rerun submit to resubmit)"
        msg = msg.splitlines()[0] if msg else ""
        if where:
            msg = f"{where}; {msg}" if msg else where
        rows.append((name, state, job, (t.get("key") or "")[:12], msg))
        if td is not None and state in ("failed", "vanished"):
            info = td.job_info()
            block = [f"--- {name} ({state})"]
            err = read_json_dict(td.error)
            if err:
                block.append(f"  error: {_text(err.get('message'))}")
            for loss in info.get("losses", []):
                block.append("  lost: " + str(loss).replace("\n", "\n  "))
            for label, path in (("stdout", td.stdout), ("stderr", td.stderr)):
                text = tail(path, lines).rstrip()
                if text:
                    block.append(f"  {label} tail ({path}):\n" + "\n".join("    " + ln for ln in text.splitlines()))
            notes.append("\n".join(block))
    updated = man.get("updated")
    age = time.time() - updated if isinstance(updated, (int, float)) and not isinstance(updated, bool) else 0.0
    header = (f"workflow {_text(man.get('name'), '?')} ({kind}); last controller update {age:.0f} s ago: "
              f"{_text(man.get('summary'))}")
    return rows, notes, header
