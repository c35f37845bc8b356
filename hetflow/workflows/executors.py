"""Executors: where calculations run.  All speak the work-directory protocol
(:mod:`hetflow.workflows._taskdir`): the controller writes ``input.json``, a worker writes
``result.json`` (or ``error.json``) next to it, the controller ingests it into the store.

* :class:`LocalExecutor` — a pool of N worker processes with T threads each
  (``OMP_NUM_THREADS=T``).  A worker killed mid-task breaks the pool; the pool is rebuilt and
  the lost tasks resubmitted up to ``max_retries``.  Workers end with their controller, also
  when it is killed with SIGKILL (``PR_SET_PDEATHSIG`` plus a parent watchdog).
* :class:`BatchExecutor` — one batch job per task on Slurm (``sbatch``; state from
  ``squeue``/``scontrol``, no accounting database needed), PBS (``qsub``/``qstat``) or LSF
  (``bsub``/``bjobs``).  A job that leaves the queue without a result or error file (cancelled,
  killed, node lost, walltime) is *vanished*: its stdout/stderr tails are recorded in
  ``job.json`` and it is resubmitted up to ``max_retries``.  ``detached=True`` submits and
  returns; running the controller again later adopts live jobs and ingests finished ones.
  Many tasks per allocation and scheduler-side chains: :mod:`hetflow.workflows.packing`.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import time
from pathlib import Path

from hetflow import procs
from hetflow.errors import WorkflowError
from hetflow.validate import executor_count
from hetflow.workflows._event import Event
from hetflow.workflows._executor import Executor, SchedulerExecutor
from hetflow.workflows._jobscript import JobResources, render_job
from hetflow.workflows._precheck import precheck_task
from hetflow.workflows._taskdir import TaskDir
from hetflow.workflows._worker import run_task_dir
from hetflow.workflows.dask_executor import DaskExecutor
from hetflow.workflows.packing import PackedBatchExecutor
from hetflow.workflows.schedulers import (  # noqa: F401 - re-exported
    LSF, PBS, SCHEDULER_CLASSES, Scheduler, Slurm, _run, make_scheduler, require_commands)

__all__ = ["Event", "Executor", "LocalExecutor", "BatchExecutor", "make_executor", "SCHEDULER_CLASSES", "Scheduler",
           "Slurm", "PBS", "LSF"]


def _init_worker(threads: int, parent: int | None = None) -> None:
    """Pool-worker start: thread counts, and end with the controller (even after its SIGKILL)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if parent is not None:
        procs.die_with_parent(parent)


def _run_in_worker(taskdir: str) -> str:
    return run_task_dir(taskdir)


class LocalExecutor(Executor):
    """Process pool on this machine: ``workers`` processes × ``threads`` threads each.

    Defaults: threads = 1, workers = number of cores // threads.
    """

    kind = "local"

    def __init__(self, workers: int | None = None, threads: int | None = None, max_retries: int = 2):
        cores = os.cpu_count() or 1
        self.threads = executor_count(threads, "threads", 1)
        self.workers = executor_count(workers, "workers", max(1, cores // self.threads))
        self.max_retries = executor_count(max_retries, "max_retries", 2, lo=0)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._futures: dict[cf.Future, str] = {}

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                      initializer=_init_worker, initargs=(self.threads, os.getpid()))

    def open(self, workdir: Path) -> None:
        self._pool = None

    # adopt: "none" (the default) — local workers do not outlive their controller's pool

    def submit(self, name: str, td: TaskDir) -> None:
        if self._pool is None:
            self._pool = self._new_pool()
        info = td.job_info()
        info.update(executor="local", attempts=info.get("attempts", 0) + 1, submitted=time.time())
        td.save_job_info(info)
        self._futures[self._pool.submit(_run_in_worker, str(td.root))] = name

    def wait(self, timeout: float) -> list[Event]:
        if not self._futures:
            return []
        done, _ = cf.wait(list(self._futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        events, broken = [], False
        for fut in done:
            name = self._futures.pop(fut)
            try:
                fut.result()
                events.append(Event(name, "finished"))
            except cf.process.BrokenProcessPool:
                broken = True
                events.append(Event(name, "lost", "worker process died (killed or crashed)"))
            except Exception as exc:  # noqa: BLE001 - worker-side failure outside the calculation
                events.append(Event(name, "lost", f"worker error: {type(exc).__name__}: {exc}"))
        if broken:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return events

    def abort(self) -> None:
        """Stop every worker now (interrupt, fatal error): SIGTERM, then SIGKILL after 3 s.
        Their tasks are computed again by the next run (relaxations resume from checkpoints)."""
        pool, self._pool = self._pool, None
        self._futures.clear()
        if pool is None:
            return
        procs_ = list(getattr(pool, "_processes", {}).values())
        for p in procs_:
            try:
                p.terminate()
            except (OSError, AttributeError):
                pass
        deadline = time.monotonic() + 3.0
        for p in procs_:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures.clear()


class BatchExecutor(SchedulerExecutor):
    """One batch job per calculation task on Slurm, PBS or LSF."""

    def submit(self, name: str, td: TaskDir) -> None:
        precheck_task(td)  # the backend's own check before sbatch (CP2K: cp2k.psmp --check)
        script = td.root / "job.sh"
        script.write_text(render_job(self.kind, self.res, name, td.root.resolve()))
        for f in (td.stdout, td.stderr):
            f.unlink(missing_ok=True)
        jid = self.sched.submit(script)
        info = td.job_info()
        hist = info.get("history", []) + [{"job_id": jid, "submitted": time.time()}]
        info.update(executor=self.kind, job_id=jid, state="submitted", history=hist,
                    attempts=info.get("attempts", 0) + 1)
        td.save_job_info(info)
        self._tasks[name] = (jid, td)


def make_executor(kind: str = "local", **options) -> Executor:
    """Executor by name: ``local`` (workers, threads, max_retries), ``dask`` (address, workers,
    threads, jobqueue, jobs and dask-jobqueue cluster options; see
    :mod:`hetflow.workflows.dask_executor`) or slurm/pbs/lsf (max_retries, poll, detached and
    the :class:`JobResources` fields; with any of pack, slots, chain, max_restarts the
    :class:`~hetflow.workflows.packing.PackedBatchExecutor`)."""
    if kind == "local":
        allowed = {"workers", "threads", "max_retries"}
        bad = set(options) - allowed
        if bad:
            raise WorkflowError(f"unknown local executor option(s): {', '.join(sorted(bad))}")
        return LocalExecutor(**options)
    if kind == "dask":
        return DaskExecutor(**options)
    ctl = {k: options.pop(k) for k in ("max_retries", "poll", "detached") if k in options}
    packing = {k: options.pop(k) for k in ("pack", "slots", "chain", "max_restarts") if k in options}
    if packing:
        return PackedBatchExecutor(kind, JobResources.from_dict(options), **ctl, **packing)
    return BatchExecutor(kind, JobResources.from_dict(options), **ctl)
