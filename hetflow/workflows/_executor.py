"""The executor protocol (what the controller :mod:`hetflow.workflows._engine` calls) and the base
class of the batch executors.

Every executor speaks the work-directory protocol of :mod:`hetflow.workflows._taskdir` and
subclasses :class:`Executor`, which gives the optional parts of the protocol their defaults, so
the controller calls every method without probing.  :class:`SchedulerExecutor` is what
:class:`~hetflow.workflows.executors.BatchExecutor` (one job per task) and
:class:`~hetflow.workflows.packing.PackedBatchExecutor` (many tasks per allocation, chains)
share: the scheduler, adopting the jobs of an earlier controller, polling the queue, telling a
finished task from a vanished job and the message of a vanished job.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hetflow.workflows._event import Event
from hetflow.workflows._jobscript import JobResources
from hetflow.workflows._taskdir import TaskDir, tail
from hetflow.workflows.schedulers import make_scheduler, require_commands

#: seconds a job may be out of the queue before its task without a result counts as lost
#: (the file system gets a moment to show the result file)
GONE_GRACE_S = 3.0


class Executor:
    """What the controller calls.  ``kind``: its name in the manifest and provenance.
    ``detached``: submit and return (a later controller run collects the results).
    ``max_retries``: resubmissions of a lost task.  ``workers``: tasks run side by side by this
    executor's own processes (the progress bar's slots), None for batch executors."""

    kind: str = ""
    detached: bool = False
    max_retries: int = 2
    workers: int | None = None

    def open(self, workdir: Path) -> None:
        """Start of a controller run in ``workdir``."""

    def adopt(self, name: str, td: TaskDir) -> str:
        """The task's last job: ``alive`` (tracked again), ``vanished: <why>`` or ``none``."""
        return "none"

    def submit(self, name: str, td: TaskDir) -> None:  # pragma: no cover - every executor implements it
        """Run the prepared task directory ``td``."""
        raise NotImplementedError

    def presubmit(self, engine: Any) -> None:
        """Called before each :meth:`wait` while tasks run (scheduler-side chains submit here)."""

    def wait(self, timeout: float) -> list[Event]:  # pragma: no cover - every executor implements it
        """Events of tasks that finished or were lost, waiting at most ``timeout`` seconds."""
        raise NotImplementedError

    def abort(self) -> None:
        """Stop what runs now (interrupt, fatal error).  Batch jobs are left to run: a later
        controller run adopts them."""

    def close(self) -> None:
        """End of a controller run."""


class SchedulerExecutor(Executor):
    """Base of the batch executors (Slurm, PBS, LSF): tracks ``name → (job id, task dir)``.

    Subclasses implement :meth:`submit` and may override the hooks :meth:`_flush` (submit what is
    queued), :meth:`_gone` (a job left the queue without the task's result), :meth:`_adopt_gone`,
    :meth:`_vanish_where` / :meth:`_vanish_note` / :meth:`_vanish_tails` (the message).
    ``finish_while_live``: a task's result counts as soon as it appears, before its job ends
    (packs run on after one of their tasks finished).
    """

    finish_while_live = False

    def __init__(self, scheduler: str = "slurm", resources: JobResources | dict | None = None,
                 max_retries: int = 2, poll: float = 5.0, detached: bool = False):
        self.sched = make_scheduler(scheduler)
        self.kind = scheduler
        if isinstance(resources, dict):
            resources = JobResources.from_dict(resources)
        self.res = resources or JobResources()
        self.max_retries = int(max_retries)
        self.poll = float(poll)
        self.detached = bool(detached)
        self.workdir = Path(".")
        self._tasks: dict[str, tuple[str, TaskDir]] = {}  # name -> (job id, dir)
        self._gone_since: dict[str, float] = {}

    # -- engine interface --------------------------------------------------------------
    def open(self, workdir: Path) -> None:
        require_commands(self.sched)
        self.workdir = Path(workdir)
        self._tasks.clear()

    def adopt(self, name: str, td: TaskDir) -> str:
        """``alive`` (tracked again), ``vanished: <why>`` or ``none`` for a task's last job."""
        info = td.job_info()
        jid = info.get("job_id")
        jid = str(jid) if isinstance(jid, (str, int)) and not isinstance(jid, bool) else None
        if not jid or info.get("executor") != self.kind or info.get("state") == "lost":
            return "none"
        if jid in self.sched.live([jid]):
            self._tasks[name] = (jid, td)
            return "alive"
        if td.result.exists() or td.error.exists():
            return "none"
        return self._adopt_gone(name, jid, td, info)

    def wait(self, timeout: float) -> list[Event]:
        self._flush()
        if not self._tasks:
            return []
        deadline = time.time() + timeout
        while True:
            events = self._check()
            if events or time.time() >= deadline:
                return events
            time.sleep(min(self.poll, max(0.0, deadline - time.time())))

    def close(self) -> None:
        self._tasks.clear()

    # -- hooks -------------------------------------------------------------------------
    def _flush(self) -> None:
        """Submit what :meth:`submit` queued (nothing: one job per task is submitted at once)."""

    def _adopt_gone(self, name: str, jid: str, td: TaskDir, info: dict[str, Any]) -> str:
        """Adopting a task whose job left the queue without a result or error file."""
        return "vanished: " + self._vanish_message(jid, td)

    def _gone(self, name: str, jid: str, td: TaskDir) -> Event | None:
        """A job left the queue without the task's result: the task is lost (None: handled)."""
        return Event(name, "lost", self._vanish_message(jid, td))

    def _vanish_where(self, info: dict[str, Any]) -> str:
        return ""

    def _vanish_note(self, td: TaskDir, info: dict[str, Any]) -> str:
        return ""

    def _vanish_tails(self, td: TaskDir, info: dict[str, Any]) -> list[tuple[str, Path | None]]:
        return [("stdout", td.stdout), ("stderr", td.stderr)]

    # -- shared ------------------------------------------------------------------------
    def _vanish_message(self, jid: str, td: TaskDir) -> str:
        """Mark the task's job lost; say what the scheduler and the job's output tails know."""
        info = td.job_info()
        info["state"] = "lost"
        td.save_job_info(info)
        desc = self.sched.describe(jid)
        msg = f"job {jid}{self._vanish_where(info)} vanished ({desc or 'no longer in the queue'})"
        msg += self._vanish_note(td, info)
        for label, path in self._vanish_tails(td, info):
            text = tail(path, 5).strip() if path else ""
            if text:
                msg += f"\n  {label}: {text}"
        return msg

    def _check(self) -> list[Event]:
        live = self.sched.live(sorted({j for j, _ in self._tasks.values()}))
        events = []
        for name in list(self._tasks):
            jid, td = self._tasks[name]
            done = td.result.exists() or td.error.exists()
            if jid in live and not (done and self.finish_while_live):
                continue
            if done:
                del self._tasks[name]
                info = td.job_info()
                info["state"] = "finished"
                td.save_job_info(info)
                events.append(Event(name, "finished"))
                continue
            first = self._gone_since.setdefault(f"{name}@{jid}", time.time())
            if time.time() - first <= GONE_GRACE_S:  # give the file system a moment
                continue
            del self._tasks[name]
            ev = self._gone(name, jid, td)
            if ev is not None:
                events.append(ev)
        self._flush()
        return events
