"""What a run shows while it works: a progress bar on a terminal, plain lines elsewhere.

* **On a terminal** (stdout is a TTY): a rich progress bar — workflow name, bar, done/total,
  elapsed time and truthful counts: ``2 running · 8 queued · 3 waiting`` (running = at most
  the executor's worker slots; the rest of the submitted tasks are queued behind them;
  waiting = tasks whose inputs are not finished).  Log records are printed *above* the bar by
  rich's :class:`~rich.logging.RichHandler` on the same console, so no bar fragments are left.
* **Not on a terminal** (``> log``, a batch job, CI): one plain line per finished task and a
  heartbeat line at least every :data:`HEARTBEAT_S` seconds (default 30;
  ``HETFLOW_HEARTBEAT=<s>``, clamped to 0.5 s … 1 day with a warning) with the
  done/running/queued counts, so a log file shows that a 25-minute run is alive.  No bar characters, no cursor movement.
* ``HETFLOW_PROGRESS=rich|plain|off`` overrides the choice.

Logging: :func:`setup_logging` (the CLI's ``-v``/``-q``) routes the ``hetflow`` loggers to the
same console; expected conditions (a relaxation stopped at its step cap, an SCF recovery
step) are INFO, shown with ``-v``; failures are WARNING and always shown.

Worker side: :func:`task_log` captures the log records of one calculation into
``<task dir>/worker.log`` instead of the worker's stderr (which is the controller's terminal
for local pool workers).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, TextIO

from hetflow import validate
from hetflow.errors import HetflowError

__all__ = ["HEARTBEAT_S", "console", "setup_logging", "progress_mode", "RunProgress", "make_progress",
           "task_log", "counts", "format_counts", "count_progress"]

#: seconds between heartbeat lines of the plain progress log
HEARTBEAT_S = 30.0
#: bounds of ``HETFLOW_HEARTBEAT`` (values outside are clamped, with a warning)
HEARTBEAT_MIN_S = 0.5
HEARTBEAT_MAX_S = 86_400.0
_LOGGER = "hetflow"
_console = None
_DONE = ("cached", "done", "recovered")


def console():
    """The one rich :class:`~rich.console.Console` (stdout) that bars and log lines share."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console()
    return _console


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def progress_mode() -> str:
    """``"rich"`` (terminal), ``"plain"`` (not a terminal) or ``"off"``; ``HETFLOW_PROGRESS``
    overrides."""
    env = os.environ.get("HETFLOW_PROGRESS", "").strip().lower()
    if env in ("rich", "plain", "off"):
        return env
    return "rich" if _stdout_is_tty() else "plain"


def heartbeat_interval() -> float:
    """Heartbeat period of the plain log in seconds: ``HETFLOW_HEARTBEAT`` clamped to
    [:data:`HEARTBEAT_MIN_S`, :data:`HEARTBEAT_MAX_S`] with a warning (``1e-9`` would flood the
    log with thousands of lines a second); not a finite number → :data:`HEARTBEAT_S`, with a
    warning."""
    raw = os.environ.get("HETFLOW_HEARTBEAT")
    if raw is None or not raw.strip():
        return HEARTBEAT_S
    try:
        v = float(validate.number(raw, "HETFLOW_HEARTBEAT", from_text=True))
    except HetflowError as exc:
        _warn_once(f"{exc}; using {HEARTBEAT_S:g} s")
        return HEARTBEAT_S
    clamped = min(max(v, HEARTBEAT_MIN_S), HEARTBEAT_MAX_S)
    if clamped != v:
        _warn_once(f"HETFLOW_HEARTBEAT={validate.printable(raw)} is outside [{HEARTBEAT_MIN_S:g}, "
                   f"{HEARTBEAT_MAX_S:g}] s; using {clamped:g} s")
    return clamped


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logging.getLogger(_LOGGER).warning("%s", message)


class _StderrHandler(logging.StreamHandler):
    """StreamHandler on whatever ``sys.stderr`` is at the time of the record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


def setup_logging(verbosity: int = 0) -> logging.Logger:
    """Configure the ``hetflow`` loggers once for a command.

    verbosity: −1 errors only, 0 warnings (default), 1 info (``-v``), 2 debug (``-vv``).
    On a terminal the records go through a RichHandler on :func:`console` (printed above a
    live progress bar); otherwise plain timestamped lines on stderr (stdout stays clean for
    a command's own output, e.g. ``--json``).
    """
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logger = logging.getLogger(_LOGGER)
    for h in list(logger.handlers):
        if getattr(h, "_hetflow", False):
            logger.removeHandler(h)
    if progress_mode() == "rich":
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console(), show_path=False, markup=False,
                                               rich_tracebacks=False, log_time_format="%H:%M:%S")
    else:
        handler = _StderrHandler()
        handler.setFormatter(_PlainFormatter())
    handler._hetflow = True  # type: ignore[attr-defined]
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger


@contextmanager
def _rich_logging() -> Iterator[None]:
    """While a bar is live: hetflow log records go through a RichHandler on the bar's console
    (added only when the caller — e.g. the Python API — configured no handler of its own)."""
    logger = logging.getLogger(_LOGGER)
    if logger.handlers:
        yield
        return
    from rich.logging import RichHandler

    h = RichHandler(console=console(), show_path=False, markup=False, log_time_format="%H:%M:%S")
    h.setLevel(logging.WARNING)
    logger.addHandler(h)
    try:
        yield
    finally:
        logger.removeHandler(h)


# --------------------------------------------------------------------------- counts


def counts(states: Mapping[str, str], names, slots: int | None) -> dict[str, int]:
    """Counts of the calculation tasks ``names``: total, done, failed, skipped, running,
    queued, waiting.  ``states`` are the engine's (pending/running/done/…); ``slots`` is the
    executor's number of workers (None: a batch scheduler, whose queue hetflow cannot see —
    every submitted task counts as ``submitted``)."""
    names = list(names)
    st = [states.get(n, "pending") for n in names]
    submitted = sum(s == "running" for s in st)
    running = submitted if slots is None else min(submitted, int(slots))
    return {"total": len(names), "done": sum(s in _DONE for s in st), "failed": sum(s == "failed" for s in st),
            "skipped": sum(s == "skipped" for s in st), "submitted": submitted, "running": running,
            "queued": submitted - running, "waiting": sum(s == "pending" for s in st),
            "batch": slots is None}


def format_counts(c: Mapping[str, int]) -> str:
    """``2 running · 8 queued · 3 waiting for inputs · 1 failed`` (batch: ``10 submitted``;
    zero waiting/failed/skipped counts are left out)."""
    parts = [f"{c['submitted']} submitted"] if c.get("batch") else [f"{c['running']} running", f"{c['queued']} queued"]
    if c.get("waiting"):
        parts.append(f"{c['waiting']} waiting for inputs")
    for k in ("failed", "skipped"):
        if c.get(k):
            parts.append(f"{c[k]} {k}")
    return " · ".join(parts)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _result_notes(result: Any) -> list[tuple[int, str]]:
    """Log-worthy facts of a finished calculation: not converged, recovery actions (INFO)."""
    if result is None:
        return []
    out = []
    if not getattr(result, "converged", True):
        spec = getattr(result, "spec", None)
        what = "relaxation" if getattr(spec, "task", "") == "relax" else "calculation"
        out.append((logging.INFO, f"{what} not converged"
                    + (f" (fmax {spec.fmax:g} eV/Å, at most {spec.max_steps} steps)" if what == "relaxation" else "")))
    for r in (getattr(result, "provenance", None) or {}).get("recovery", []) or []:
        out.append((logging.INFO, f"recovery: {r}"))
    return out


# --------------------------------------------------------------------------- displays


class RunProgress:
    """Progress of one engine run; this base class shows nothing (``progress=False``)."""

    def __init__(self, name: str, calc_names, slots: int | None = None):
        self.name = name
        self.calc_names = list(calc_names)
        self.slots = slots
        self.t0 = time.monotonic()
        self._counts = counts({}, self.calc_names, slots)
        self.log = logging.getLogger(f"{_LOGGER}.run")

    def __enter__(self) -> "RunProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, states: Mapping[str, str]) -> None:
        self._counts = counts(states, self.calc_names, self.slots)

    def finished(self, name: str, state: str, message: str = "", result: Any = None) -> None:
        """A calculation task reached ``state`` (done, cached, recovered, failed, skipped)."""
        for level, note in _result_notes(result):
            self.log.log(level, "%s: %s", name, note)
        if state == "failed":
            self.log.warning("%s failed: %s", name, (message or "").splitlines()[0] if message else "")

    def close(self) -> None:
        pass


class RichRunProgress(RunProgress):
    """rich progress bar on :func:`console`; log records above it."""

    def __init__(self, name: str, calc_names, slots: int | None = None):
        super().__init__(name, calc_names, slots)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._logs = _rich_logging()
        self._logs.__enter__()
        self._bar = Progress(TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TextColumn("{task.description}"), console=console(), transient=False)
        self._bar.start()
        self._id = self._bar.add_task("", total=len(self.calc_names))

    def update(self, states: Mapping[str, str]) -> None:
        super().update(states)
        c = self._counts
        self._bar.update(self._id, completed=c["done"] + c["failed"] + c["skipped"], description=format_counts(c))

    def close(self) -> None:
        self._bar.stop()
        self._logs.__exit__(None, None, None)


class LineRunProgress(RunProgress):
    """Plain progress log: a line per finished task and heartbeats (not a terminal)."""

    def __init__(self, name: str, calc_names, slots: int | None = None, stream: TextIO | None = None,
                 interval: float | None = None):
        super().__init__(name, calc_names, slots)
        self.stream = stream
        self.interval = heartbeat_interval() if interval is None else float(interval)
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._ended = 0
        self._stop = threading.Event()
        where = "" if slots is None else f" on {slots} worker{'s' if slots != 1 else ''}"
        self._line(f"{len(self.calc_names)} calculations{where}")
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{name}", daemon=True)
        self._thread.start()

    def _line(self, text: str) -> None:
        out = self.stream or sys.stdout
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            out.write(f"{stamp} {self.name} [{_hms(time.monotonic() - self.t0)}] {text}\n")
            out.flush()
            self._last = time.monotonic()

    def _status(self) -> str:
        c = self._counts
        return f"{c['done']}/{c['total']} done · {format_counts(c)}"

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.interval / 4)):
            if time.monotonic() - self._last >= self.interval:
                self._line(f"heartbeat: {self._status()}")

    def finished(self, name: str, state: str, message: str = "", result: Any = None) -> None:
        super().finished(name, state, message, result)
        self._ended += 1
        extra = ""
        if state == "failed" and message:
            extra = f": {message.splitlines()[0]}"
        elif result is not None and not getattr(result, "converged", True):
            extra = " (not converged)"
        self._line(f"{name} {state}{extra} ({self._ended}/{len(self.calc_names)})")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._line(f"finished: {self._status()}")


def make_progress(name: str, calc_names, enabled: bool = True, slots: int | None = None,
                  mode: str | None = None, stream: TextIO | None = None,
                  interval: float | None = None) -> RunProgress:
    """The progress display of an engine run (``enabled=False`` or mode ``off``: none).

    slots: the executor's worker count (None for batch schedulers)."""
    mode = progress_mode() if mode is None else mode
    if not enabled or mode == "off":
        return RunProgress(name, calc_names, slots)
    if mode == "rich":
        return RichRunProgress(name, calc_names, slots)
    return LineRunProgress(name, calc_names, slots, stream=stream, interval=interval)


@contextmanager
def count_progress(label: str, mode: str | None = None, stream: TextIO | None = None,
                   interval: float | None = None):
    """Progress of a long loop outside the engine (e.g. a symmetry-distinct enumeration):
    yields ``callback(done, total, found)``.  A bar on a terminal; otherwise a plain line at
    most every heartbeat interval and one at the end."""
    mode = progress_mode() if mode is None else mode
    if mode == "off":
        yield lambda done, total, found: None
        return
    if mode == "rich":
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("{task.description}"), console=console(), transient=True)
        with _rich_logging(), bar:
            tid = bar.add_task("", total=None)

            def cb(done: int, total: int, found: int) -> None:
                bar.update(tid, completed=done, total=total, description=f"{found} distinct")

            yield cb
        return
    every = heartbeat_interval() if interval is None else float(interval)
    state = {"last": time.monotonic(), "t0": time.monotonic(), "final": None}

    def line(done: int, total: int, found: int) -> None:
        out = stream or sys.stdout
        out.write(f"{time.strftime('%H:%M:%S')} {label} [{_hms(time.monotonic() - state['t0'])}] "
                  f"{done}/{total} examined, {found} distinct\n")
        out.flush()

    def cb(done: int, total: int, found: int) -> None:
        state["final"] = (done, total, found)
        if time.monotonic() - state["last"] >= every:
            line(done, total, found)
            state["last"] = time.monotonic()

    yield cb
    if state["final"] is not None:
        line(*state["final"])


# --------------------------------------------------------------------------- worker side


@contextmanager
def task_log(path: str | Path, level: int = logging.INFO) -> Iterator[Path]:
    """Send the ``hetflow`` log records of the enclosed calculation to ``path`` (appended)
    instead of the process's stderr — which, for a local pool worker, is the controller's
    terminal with a live progress bar on it."""
    path = Path(path)
    logger = logging.getLogger(_LOGGER)
    old = (logger.level, logger.propagate, list(logger.handlers))
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)  # no file unless something is logged
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    for h in old[2]:  # e.g. a console handler of a CLI run in this process: the file only
        logger.removeHandler(h)
    logger.addHandler(handler)
    logger.setLevel(min(level, logger.level) if logger.level else level)
    logger.propagate = False
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        for h in old[2]:
            logger.addHandler(h)
        logger.setLevel(old[0])
        logger.propagate = old[1]
