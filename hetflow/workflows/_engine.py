"""The controller loop: resolve keys, reuse cached results, dispatch, ingest, retry.

Only the controller writes the store.  Its state is rebuilt on every start from the store
and the work directory, which is what makes ``kill -9`` + rerun safe: finished results are
in the store (cached) or in a result file (ingested without rerunning); nothing else is
trusted.

Several controllers may run the same workflow at once: before computing a task a
controller claims its directory (:meth:`~hetflow.workflows._taskdir.TaskDir.try_claim`); a
task claimed by a live controller is left to it and its result is picked up from the store
or the task's result file, and the claim of a dead controller is taken over.

SIGTERM and SIGHUP stop the run like Ctrl-C: local workers are stopped, claims released,
the manifest written; a store or file-system failure (disk full, damaged store) ends the run
with that one error instead of failing every task.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hetflow import atomic, procs
from hetflow.calculators.base import calc_key
from hetflow.errors import HetflowError, OutputError, StoreError, WorkflowError
from hetflow.workflows._executor import Executor
from hetflow.workflows._taskdir import TaskDir, read_json_dict, task_dirname, write_json_atomic
from hetflow.workflows._tasks import CalcTask, Summary
from hetflow.workflows.progress import make_progress
from hetflow.workflows.store import redact

DONE = ("cached", "done", "recovered")
#: seconds between claim heartbeats
HEARTBEAT_S = 20.0

log = logging.getLogger("hetflow.workflows")


class Engine:
    """Runs one :class:`Workflow` against a store with an executor."""

    def __init__(self, wf: "Workflow", store, executor: Executor, workdir: str | Path,  # noqa: F821
                 progress: bool = False, poll: float = 0.5):
        self.wf, self.store, self.ex = wf, store, executor
        self.workdir = Path(workdir)
        self.progress = progress
        self.poll = poll
        self.state: dict[str, str] = {}
        self.keys: dict[str, str | None] = {}
        self.msg: dict[str, str] = {}
        self.results: dict[str, Any] = {}
        self.summary = Summary()
        self._claimed: dict[str, TaskDir] = {}   # tasks this controller manages
        self._foreign: dict[str, str] = {}       # task -> key, computed by another live controller
        self._beat = 0.0

    # -- manifest ----------------------------------------------------------------
    def _write_manifest(self) -> None:
        tasks = {}
        for n in self.order:
            t = self.wf.task(n)
            tasks[n] = {
                "kind": "calc" if isinstance(t, CalcTask) else "derived",
                "dir": f"tasks/{task_dirname(n)}" if isinstance(t, CalcTask) else None,
                "key": self.keys.get(n), "state": self.state[n], "message": self.msg.get(n, ""),
                "parents": self.wf.parents(n),
            }
        shown = getattr(self.store, "shown", None)
        if shown is None:
            shown = redact(getattr(self.store, "location", ""))
        write_json_atomic(self.workdir / "workflow.json", {  # never a password: see store.redact
            "name": self.wf.name, "store": shown, "executor": self.ex.kind,
            "updated": time.time(), "summary": str(self.summary), "tasks": tasks,
        })

    # -- transitions -------------------------------------------------------------
    def _finish(self, name: str, state: str, message: str = "") -> None:
        self.state[name] = state
        if message:
            self.msg[name] = message
        if state in ("failed",):
            self.summary.failed += 1
            self.summary.failures[name] = message
        self._foreign.pop(name, None)
        td = self._claimed.pop(name, None)
        if td is not None:
            td.release()
        if isinstance(self.wf.task(name), CalcTask):
            self._progress.finished(name, state, message, self.results.get(name))

    def _ingest(self, name: str, payload: dict, recovered: bool) -> None:
        td = TaskDir.for_task(self.workdir, name)
        info = td.job_info()
        self.store.ingest(payload, workflow=self.wf.name, extra_provenance={
            "executor": self.ex.kind, "attempts": info.get("attempts", 1),
            "losses": info.get("losses", [])})
        self.results[name] = self.store.get(payload["key"])
        if recovered:
            self.summary.ingested += 1
        else:
            self.summary.run += 1
        self._finish(name, "recovered" if recovered else "done")

    def _lost(self, name: str, message: str) -> None:
        """A worker/job vanished: record it, resubmit up to the executor's retry limit."""
        td = TaskDir.for_task(self.workdir, name)
        info = td.job_info()
        losses = info.get("losses", []) + [message]
        info["losses"] = losses
        td.save_job_info(info)
        if len(losses) > self.ex.max_retries:
            self._finish(name, "failed", f"lost {len(losses)} times (limit {self.ex.max_retries} retries): {message.splitlines()[0]}")
            return
        self.ex.submit(name, td)
        self.state[name] = "running"
        self.msg[name] = f"resubmitted after: {message.splitlines()[0]}"

    def _try_start(self, name: str) -> bool:
        """Start ``name`` if its inputs are ready; True when its state changed."""
        task = self.wf.task(name)
        parents = self.wf.parents(name)
        pstates = [self.state[p] for p in parents]
        if any(s in ("failed", "skipped") for s in pstates):
            self.summary.skipped += 1
            self._finish(name, "skipped", "an input failed")
            return True
        if not all(s in DONE for s in pstates):
            return False
        if not isinstance(task, CalcTask):
            try:
                self.results[name] = task.func(**{p: self.results[p] for p in task.inputs})
            except Exception as exc:  # noqa: BLE001 - a failing derived step fails only itself
                self._finish(name, "failed", f"{type(exc).__name__}: {exc}")
                return True
            self.summary.derived += 1
            self._finish(name, "done")
            return True
        parent = self.results[task.start_from].atoms if task.start_from else None
        atoms = task.start_atoms(parent)
        key = calc_key(atoms, task.spec)
        self.keys[name] = key
        atomic.sweep_stale(TaskDir.for_task(self.workdir, name).root)  # temporary files of dead writers
        if self.store.has(key):
            self.results[name] = self.store.get(key)
            self.summary.cached += 1
            self._finish(name, "cached")
            return True
        if key in self._inflight.values():  # same calculation under another name: wait
            return False
        td = TaskDir.for_task(self.workdir, name)
        if name not in self._claimed:
            ok, owner = td.try_claim()
            if not ok:  # a live controller computes it: leave it, collect its result
                payload = td.result_for(key)
                if payload is not None:
                    self._ingest(name, payload, recovered=True)
                    return True
                if name not in self._foreign:
                    log.warning("task %s is being computed by another controller (%s); leaving it to it",
                                name, procs.describe(owner))
                self._foreign[name] = key
                self.msg[name] = f"computed by another controller ({procs.describe(owner)})"
                return False
            if owner is not None:
                log.warning("task %s: taking over from controller %s, which is no longer running",
                            name, procs.describe(owner))
            self._claimed[name] = td
            self._foreign.pop(name, None)
            atomic.sweep_stale(td.root)
        td.prepare(name, key, atoms, task.spec)
        payload = td.result_for(key)
        if payload is not None:
            self._ingest(name, payload, recovered=True)
            return True
        self._inflight[name] = key
        adopted = self.ex.adopt(name, td) if td.error_for(key) is None else "none"
        if adopted == "alive":
            self.state[name] = "running"
            self.msg[name] = "adopted running job"
            return True
        if adopted.startswith("vanished"):
            self._lost(name, adopted.partition(":")[2].strip() or "job vanished")
            if self.state[name] != "running":  # gave up: the key is no longer in flight
                self._inflight.pop(name, None)
            return True
        td.clear_outcome()
        self.ex.submit(name, td)
        self.state[name] = "running"
        return True

    def _on_event(self, ev) -> None:
        name = ev.name
        self._inflight.pop(name, None)
        key = self.keys[name]
        td = TaskDir.for_task(self.workdir, name)
        if ev.kind == "lost":
            self._inflight[name] = key
            self._lost(name, ev.message)
            if self.state[name] != "running":
                self._inflight.pop(name, None)
            return
        payload = td.result_for(key)
        if payload is not None:
            self._ingest(name, payload, recovered=False)
            return
        err = td.error_for(key)
        if err is not None:
            self._finish(name, "failed", str(err.get("message", "calculation failed")))
            return
        problem = td.result_problem(key)
        if problem is not None:  # the calculation produced something unstorable: not a lost worker
            self._finish(name, "failed", f"unusable result ({problem}) in {td.result}")
            return
        self._inflight[name] = key
        self._lost(name, ev.message or "worker ended without writing a result")
        if self.state[name] != "running":
            self._inflight.pop(name, None)

    # -- main loop ---------------------------------------------------------------
    def run(self) -> Summary:
        self.order = self.wf.validate()
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkflowError(f"cannot create work directory {self.workdir}: {exc.strerror or exc}") from None
        self.state = {n: "pending" for n in self.order}
        self._inflight: dict[str, str] = {}
        atomic.sweep_stale(self.workdir)
        aborted = True
        try:
            with procs.signals_as_interrupt():
                self.ex.open(self.workdir)
                self._progress = make_progress(self.wf.name, [n for n in self.order
                                                              if isinstance(self.wf.task(n), CalcTask)],
                                               enabled=self.progress, slots=self.ex.workers)
                try:
                    self._loop()
                    aborted = False
                finally:
                    if aborted:
                        self.ex.abort()  # stop local workers now, do not wait for them
                    self.ex.close()
                    self._progress.close()
        finally:
            for td in self._claimed.values():
                td.release()
            self._claimed.clear()
            if aborted:
                try:
                    self._write_manifest()
                except HetflowError:
                    pass
        self.summary.pending = sum(s in ("running", "pending") for s in self.state.values())
        self._write_manifest()
        return self.summary

    def _loop(self) -> None:
        while True:
            changed = True
            while changed:
                changed = False
                for n in self.order:
                    if self.state[n] == "pending":
                        try:
                            changed |= self._try_start(n)
                        except (StoreError, OutputError):
                            raise  # the store or the disk failed: every task would fail the same way
                        except HetflowError as exc:
                            self._finish(n, "failed", str(exc))
                            changed = True
            self._write_manifest()
            self._heartbeat()
            self._progress.update(self.state)
            running = any(s == "running" for s in self.state.values())
            waiting = any(self.state[n] == "pending" for n in self._foreign)
            if not running and not waiting:
                return
            if self.ex.detached and not running:
                return  # tasks of another controller: collected by a later run
            if running:
                self.ex.presubmit(self)  # scheduler-side chains (workflows.packing)
                events = self.ex.wait(0 if self.ex.detached else self.poll)
            else:
                events = []
                time.sleep(self.poll)
            for ev in events:
                self._on_event(ev)
            if self.ex.detached and not events:
                return

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._beat >= HEARTBEAT_S:
            self._beat = now
            for td in self._claimed.values():
                td.heartbeat()


def load_manifest(workdir: str | Path) -> dict | None:
    """The ``workflow.json`` of a work directory (None when absent or not a JSON object)."""
    return read_json_dict(Path(workdir) / "workflow.json")
