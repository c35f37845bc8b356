"""Many tasks per batch allocation, and chains submitted with scheduler-side dependencies.

:class:`PackedBatchExecutor` speaks the same task-directory protocol as
:class:`~hetflow.workflows.executors.BatchExecutor` (``input.json`` → worker → ``result.json`` /
``error.json``; the controller alone writes the store), but:

* **Packing** (``pack=N``): tasks handed to :meth:`submit` are buffered and submitted ``N`` per
  allocation.  Each pack is a directory ``<workdir>/packs/pack-<n>/`` with ``pack.json`` (its
  task directories) and ``job.sh``; the job runs the launcher ``python -m
  hetflow.workflows.packing PACKDIR``, which runs the tasks one after another — or ``slots``
  side by side, the allocation then asking for ``slots`` × the per-task CPUs — each in its own
  worker process with stdout/stderr in the task's ``job.out``/``job.err``.  The launcher writes
  ``allocation.json`` into each task directory (job id, pack, slot, host, start, end, exit
  status), which ``hetflow status`` shows.  A task whose result appears is ingested at once,
  while the rest of its pack still runs.
* **Lost tasks**: when an allocation leaves the queue (finished, ``scancel``, walltime, node
  failure), every task of it without a result or error file is *lost* — the engine resubmits it
  (into a new pack) up to ``max_retries``; each result is stored once (content keys).
* **Walltime stops** (``stopped.json``, written by the worker when CP2K stopped at its
  ``WALLTIME`` with restart files in place) are resubmitted by the executor itself, up to
  ``max_restarts`` times, without counting as a loss; each is listed in ``job.json["restarts"]``
  and the calculation records its resumption in the stored provenance.
* **Chains** (``chain=True``): a task that starts from another task's final geometry is
  submitted at once with ``--dependency=afterok:<parent's job>`` (PBS ``depend=afterok``, LSF
  ``done()``) and a deferred input (:mod:`hetflow.workflows.chain`), so a warm-started scan runs
  to its end with the controller detached; the next ``hetflow submit`` ingests everything.

The launcher exits 0 when every task ended with a result or an error file, 1 otherwise (a task
crashed, was killed or stopped at the walltime), so dependent jobs run only behind complete packs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hetflow.errors import WorkflowError
from hetflow.workflows._event import Event
from hetflow.workflows._executor import SchedulerExecutor
from hetflow.workflows._jobscript import JobResources, render_job
from hetflow.workflows._precheck import precheck_task
from hetflow.workflows._taskdir import TaskDir, read_json, write_json_atomic
from hetflow.workflows._tasks import CalcTask
from hetflow.workflows.chain import write_deferred

STOPPED = "stopped.json"
ALLOCATION = "allocation.json"


class PackedBatchExecutor(SchedulerExecutor):
    """Batch executor that packs ``pack`` tasks into one allocation and chains dependent tasks
    with scheduler-side dependencies (see the module doc).

    pack: tasks per allocation (1 = one job per task).  slots: tasks run side by side inside an
    allocation (1 = one after another).  chain: submit ``start_from`` tasks at once behind their
    parent's job.  max_restarts: walltime resumptions per task.  Other arguments as
    :class:`~hetflow.workflows.executors.BatchExecutor`.
    """

    finish_while_live = True  # a task's result counts while the rest of its pack runs

    def __init__(self, scheduler: str = "slurm", resources: JobResources | dict | None = None,
                 max_retries: int = 2, poll: float = 5.0, detached: bool = False, pack: int = 1,
                 slots: int = 1, chain: bool = True, max_restarts: int = 10):
        for label, v in (("pack", pack), ("slots", slots), ("max_restarts", max_restarts + 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WorkflowError(f"{label} must be a positive integer, got {v!r}")
        if slots > pack:
            raise WorkflowError(f"slots ({slots}) cannot exceed pack ({pack})")
        super().__init__(scheduler, resources, max_retries, poll, detached)
        self.pack, self.slots, self.chain = int(pack), int(slots), bool(chain)
        self.max_restarts = int(max_restarts)
        self._pending: list[tuple[str, TaskDir, str | None]] = []  # (name, dir, parent task or None)
        self._chained: dict[str, tuple[str, str]] = {}  # name -> (own job id, parent job id)

    # -- engine interface --------------------------------------------------------------
    def open(self, workdir: Path) -> None:
        super().open(workdir)
        self._pending.clear()
        self._chained.clear()

    def submit(self, name: str, td: TaskDir) -> None:
        """Queue ``name`` for the next allocation (submitted at :meth:`wait`)."""
        precheck_task(td)  # the backend's own check before the pack is submitted
        self._pending.append((name, td, None))

    def presubmit(self, engine: Any) -> None:
        """Submit the chain links whose parent is in flight, behind the parent's job (engine hook)."""
        if not self.chain:
            return
        queued = {n for n, _, _ in self._pending}
        for name in engine.order:
            task = engine.wf.task(name)
            if engine.state.get(name) != "pending" or not isinstance(task, CalcTask) or not task.start_from:
                continue
            if name in queued:
                continue
            parent = task.start_from
            pjid = self._job_of(parent)
            if pjid is None and parent not in queued:
                continue
            if name in self._chained and self._chained[name][1] == pjid:
                continue  # already behind this parent job
            td = TaskDir.for_task(engine.workdir, name)
            info = td.job_info()
            if pjid and info.get("chained") and info.get("after") == [pjid] and info.get("job_id") \
                    and info["job_id"] in self.sched.live([info["job_id"]]):
                self._chained[name] = (info["job_id"], pjid)  # from an earlier controller run
                continue
            write_deferred(td, name, task.spec, task.atoms, parent, TaskDir.for_task(engine.workdir, parent).root)
            self._pending.append((name, td, parent))
            queued.add(name)

    def close(self) -> None:
        super().close()
        self._pending.clear()

    # -- internals ---------------------------------------------------------------------
    def _job_of(self, name: str) -> str | None:
        if name in self._tasks:
            return self._tasks[name][0]
        if name in self._chained:
            return self._chained[name][0]
        return None

    def _next_pack_dir(self) -> Path:
        root = self.workdir / "packs"
        root.mkdir(parents=True, exist_ok=True)
        n = 1 + max([int(p.name.split("-")[1]) for p in root.glob("pack-*") if p.name.split("-")[1].isdigit()]
                    or [0])
        d = root / f"pack-{n:04d}"
        d.mkdir()
        return d

    def _flush(self) -> None:
        """Submit the queued tasks, ``pack`` per allocation; chain links after their parent's job."""
        while self._pending:
            ready, later = [], []
            for item in self._pending:
                name, td, parent = item
                if parent is None:
                    ready.append((item, ()))
                else:
                    pj = self._job_of(parent)
                    (ready.append((item, (pj,))) if pj else later.append(item))
            if not ready:
                raise WorkflowError("chain links wait for parents that were never submitted: "
                                    + ", ".join(n for n, _, _ in later))
            groups: dict[tuple[str, ...], list[tuple[str, TaskDir, str | None]]] = {}
            for item, after in ready:
                groups.setdefault(after, []).append(item)
            self._pending = later
            for after, items in groups.items():
                for i in range(0, len(items), self.pack):
                    self._submit_pack(items[i:i + self.pack], after)

    def _submit_pack(self, items: list[tuple[str, TaskDir, str | None]], after: tuple[str, ...]) -> None:
        pdir = self._next_pack_dir()
        slots = min(self.slots, len(items))
        write_json_atomic(pdir / "pack.json", {
            "tasks": [str(td.root.resolve()) for _, td, _ in items], "names": [n for n, _, _ in items],
            "slots": slots, "threads": self.res.threads, "python": self.res.python, "after": list(after),
            "created": time.time()})
        res = dataclasses.replace(self.res, ntasks=self.res.ntasks * slots) if slots > 1 else self.res
        first = items[0][0]
        label = f"{first}+{len(items) - 1}" if len(items) > 1 else first
        script = pdir / "job.sh"
        script.write_text(render_job(self.kind, res, label, pdir.resolve(),
                                     [res.python, "-m", "hetflow.workflows.packing", str(pdir.resolve())]))
        for _, td, _ in items:
            for f in (td.stdout, td.stderr, td.root / ALLOCATION):
                f.unlink(missing_ok=True)
        jid = self.sched.submit(script, after)
        for idx, (name, td, parent) in enumerate(items):
            info = td.job_info()
            hist = info.get("history", []) + [{"job_id": jid, "pack": pdir.name, "submitted": time.time(),
                                               **({"after": list(after)} if after else {})}]
            info.update(executor=self.kind, job_id=jid, state="submitted", history=hist, pack=pdir.name,
                        pack_index=idx + 1, pack_size=len(items), attempts=info.get("attempts", 0) + 1,
                        chained=parent is not None, after=list(after))
            td.save_job_info(info)
            if parent is None:
                self._tasks[name] = (jid, td)
            else:
                self._chained[name] = (jid, after[0])

    def _note_stop(self, td: TaskDir, info: dict[str, Any]) -> None:
        stop = read_json(td.root / STOPPED)
        if not stop:
            return
        info.setdefault("restarts", []).append({"job_id": stop.get("job_id"), "message": stop.get("message", ""),
                                                "end": stop.get("end")})
        td.save_job_info(info)
        (td.root / STOPPED).unlink(missing_ok=True)

    def _adopt_gone(self, name: str, jid: str, td: TaskDir, info: dict[str, Any]) -> str:
        if info.get("chained") or (td.root / STOPPED).exists():
            # a chain link whose job never ran its input (parent lost/failed → removed by the
            # scheduler), or a walltime stop: submit afresh, nothing was lost
            self._note_stop(td, info)
            return "none"
        return super()._adopt_gone(name, jid, td, info)

    def _gone(self, name: str, jid: str, td: TaskDir) -> Event | None:
        info = td.job_info()
        if (td.root / STOPPED).exists() and len(info.get("restarts", [])) < self.max_restarts:
            self._note_stop(td, info)
            self._pending.append((name, td, None))  # resume in a new allocation, not a loss
            return None
        return super()._gone(name, jid, td)

    def _vanish_where(self, info: dict[str, Any]) -> str:
        return f" (pack {info['pack']}, task {info.get('pack_index')}/{info.get('pack_size')})" if info.get("pack") else ""

    def _vanish_note(self, td: TaskDir, info: dict[str, Any]) -> str:
        alloc = read_json(td.root / ALLOCATION)
        if alloc and alloc.get("exit") is not None:
            return f"; the task's worker exited with status {alloc['exit']}"
        if alloc:
            return "; the task had started in it"
        return "; the task had not started in it"

    def _vanish_tails(self, td: TaskDir, info: dict[str, Any]) -> list[tuple[str, Path | None]]:
        pack_err = self.workdir / "packs" / str(info.get("pack", "")) / "job.err" if info.get("pack") else None
        return super()._vanish_tails(td, info) + [("allocation stderr", pack_err)]


# ----------------------------------------------------------------------------- launcher


def _start(task: Path, python: str, threads: int, slot: int, index: int, env: dict[str, str],
           pack: str) -> subprocess.Popen:
    out = open(task / "job.out", "a")
    err = open(task / "job.err", "a")
    write_json_atomic(task / ALLOCATION, {
        "job_id": env.get("SLURM_JOB_ID") or env.get("PBS_JOBID") or env.get("LSB_JOBID"),
        "pack": pack, "index": index,
        "slot": slot, "host": socket.gethostname(), "start": time.time(), "end": None, "exit": None})
    e = dict(env)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        e[var] = str(threads)
    return subprocess.Popen([python, "-m", "hetflow.workflows._worker", str(task)], cwd=task, stdout=out,
                            stderr=err, env=e, stdin=subprocess.DEVNULL)


def run_pack(pack_dir: str | Path) -> int:
    """Run a pack's tasks (``slots`` at a time); 0 when each ended with a result or error file."""
    pdir = Path(pack_dir)
    spec = json.loads((pdir / "pack.json").read_text())
    tasks = [Path(t) for t in spec["tasks"]]
    slots, threads = int(spec.get("slots", 1)), int(spec.get("threads", 1))
    python = spec.get("python") or sys.executable
    env = dict(os.environ)
    queue = list(enumerate(tasks, start=1))
    running: dict[int, tuple[int, Path, subprocess.Popen]] = {}  # slot -> (index, task, proc)
    complete = True
    while queue or running:
        for slot in range(1, slots + 1):
            if slot not in running and queue:
                index, task = queue.pop(0)
                print(f"pack {pdir.name}: task {index}/{len(tasks)} {task.name} starts in slot {slot}", flush=True)
                running[slot] = (index, task, _start(task, python, threads, slot, index, env, pdir.name))
        time.sleep(0.2)
        for slot, (index, task, proc) in list(running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del running[slot]
            info = read_json(task / ALLOCATION) or {}
            info.update(end=time.time(), exit=rc)
            write_json_atomic(task / ALLOCATION, info)
            ok = (task / "result.json").exists() or (task / "error.json").exists()
            complete &= ok
            print(f"pack {pdir.name}: task {index}/{len(tasks)} {task.name} ended, exit {rc}"
                  + ("" if ok else " without a result (resubmitted by the controller)"), flush=True)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(run_pack(sys.argv[1]))
