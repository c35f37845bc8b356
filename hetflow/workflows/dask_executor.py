"""Dask executor: the work-directory protocol on a ``dask.distributed`` cluster.

For users who already run a Python-native distributed engine.  Each task is one Dask future
that runs :func:`hetflow.workflows._worker.run_task_dir` on a task directory the workers can
see (a shared file system); as with every executor, workers write ``result.json`` next to the
inputs and only the controller writes the store.

* ``DaskExecutor()`` starts a ``LocalCluster`` of ``workers`` processes (1 Dask thread each;
  ``threads`` = OMP/BLAS threads per calculation).
* ``DaskExecutor(address="tcp://host:8786")`` connects to a running scheduler.
* ``DaskExecutor(jobqueue="slurm", jobs=4, cores=8, memory="16GB", …)`` starts a
  ``dask_jobqueue`` cluster (SLURMCluster / PBSCluster / LSFCluster) with those keyword
  arguments and scales it to ``jobs`` batch jobs.

Requires the optional extra: ``pip install 'hetflow[dask]'``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from hetflow.errors import WorkflowError
from hetflow.validate import executor_count
from hetflow.workflows._taskdir import TaskDir
from hetflow.workflows._event import Event
from hetflow.workflows._executor import Executor
from hetflow.workflows._worker import run_task_dir

_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster"}


def _run_with_threads(taskdir: str, threads: int) -> str:
    """Dask task body: set the BLAS/OpenMP thread count, run the task directory."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("HETFLOW_THREADS", str(threads))
    return run_task_dir(taskdir)


class DaskExecutor(Executor):
    """Run tasks as ``dask.distributed`` futures (see module docstring for the three modes)."""

    kind = "dask"
    detached = False

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int | None = None,
                 max_retries: int = 2, jobqueue: str | None = None, jobs: int = 1, **cluster_options: Any):
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise WorkflowError("the dask executor needs dask.distributed: pip install 'hetflow[dask]'") from None
        if jobqueue is not None and jobqueue not in _JOBQUEUE:
            raise WorkflowError(f"unknown jobqueue {jobqueue!r}; choose one of {', '.join(_JOBQUEUE)}")
        if address and jobqueue:
            raise WorkflowError("give either a scheduler address or a jobqueue cluster, not both")
        if cluster_options and not jobqueue:
            raise WorkflowError(f"unknown dask executor option(s): {', '.join(sorted(cluster_options))}")
        if address is not None and not isinstance(address, str):
            raise WorkflowError(f"address must be a string like tcp://host:8786, got {address!r}")
        self.address, self.jobqueue = address, jobqueue
        self.jobs = executor_count(jobs, "jobs", 1)
        self.threads = executor_count(threads, "threads", 1)
        self.workers = executor_count(workers, "workers", max(1, (os.cpu_count() or 1) // self.threads))
        self.max_retries = executor_count(max_retries, "max_retries", 2, lo=0)
        self.cluster_options = cluster_options
        self._client = None
        self._cluster = None
        self._futures: dict[Any, str] = {}

    def _connect(self) -> None:
        from distributed import Client, LocalCluster

        if self.address:
            self._client = Client(self.address)
            return
        if self.jobqueue:
            try:
                import dask_jobqueue
            except ImportError:
                raise WorkflowError("jobqueue clusters need dask-jobqueue: pip install 'hetflow[dask]'") from None
            self._cluster = getattr(dask_jobqueue, _JOBQUEUE[self.jobqueue])(**self.cluster_options)
            self._cluster.scale(jobs=self.jobs)
        else:
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
        self._client = Client(self._cluster)

    def open(self, workdir: Path) -> None:
        self._futures = {}

    def adopt(self, name: str, td: TaskDir) -> str:
        return "none"  # futures do not outlive the controller's client

    def submit(self, name: str, td: TaskDir) -> None:
        if self._client is None:
            self._connect()
        info = td.job_info()
        info.update(executor="dask", attempts=info.get("attempts", 0) + 1, submitted=time.time())
        td.save_job_info(info)
        fut = self._client.submit(_run_with_threads, str(td.root), self.threads, pure=False,
                                  key=f"hetflow-{name}-{info['attempts']}-{time.time_ns()}")
        self._futures[fut] = name

    def wait(self, timeout: float) -> list[Event]:
        if not self._futures:
            return []
        from distributed import wait as dwait

        try:
            done, _ = dwait(list(self._futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        events = []
        for fut in done:
            name = self._futures.pop(fut)
            if fut.status == "finished":
                events.append(Event(name, "finished"))
            else:
                exc = fut.exception()
                events.append(Event(name, "lost", f"dask task {fut.status}: {type(exc).__name__}: {exc}"))
        return events

    def close(self) -> None:
        for fut in self._futures:
            fut.cancel()
        self._futures.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
