"""Persistent calculation worker processes started with an optimised BLAS preloaded.

``LD_PRELOAD`` only acts at process start, so a calculation that should use OpenBLAS instead of
the netlib BLAS bundled in the tblite wheel runs in a child process::

    python -m hetflow.calculators._worker <read-fd> <write-fd>

started with ``LD_PRELOAD=<libopenblas>`` and ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` set.
Parent and child talk over two private pipes (never stdout, which Fortran codes write to) with
:class:`multiprocessing.connection.Connection` messages: ``(function path, args, kwargs)`` in,
``("ok", value)`` or ``("err", exception)`` out.  Workers are pooled per (library, threads) and
reused, so a workflow pays the start-up (~1 s) once; a worker that dies is replaced and the
call fails with a :class:`~hetflow.errors.CalculatorError`.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import pickle
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hetflow.calculators.blas import IN_WORKER_ENV, process_has
from hetflow.errors import CalculatorError

log = logging.getLogger("hetflow.calculators.worker")

_POOL: dict[tuple[str | None, int], list["Worker"]] = {}
_POOL_LOCK = threading.Lock()


class Worker:
    """One child process with ``preload`` in ``LD_PRELOAD`` and ``threads`` OpenMP threads."""

    def __init__(self, preload: str | None, threads: int) -> None:
        self.preload = preload
        self.threads = threads
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        env = dict(os.environ)
        if preload:
            env["LD_PRELOAD"] = ":".join(x for x in (preload, env.get("LD_PRELOAD", "")) if x)
        env["OMP_NUM_THREADS"] = str(threads)
        env["OPENBLAS_NUM_THREADS"] = str(threads)
        env[IN_WORKER_ENV] = "1"
        pkg_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(x for x in (pkg_parent, env.get("PYTHONPATH", "")) if x)
        try:
            stdout: Any = 2 if os.fstat(2) else subprocess.DEVNULL
        except OSError:
            stdout = subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hetflow.calculators._worker", str(p2c_r), str(c2p_w)],
            env=env,
            pass_fds=(p2c_r, c2p_w),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
        )
        os.close(p2c_r)
        os.close(c2p_w)
        self._send = Connection(p2c_w, readable=False)
        self._recv = Connection(c2p_r, writable=False)
        hello = self._receive()
        self.blas_loaded: bool = bool(hello.get("preload_loaded"))
        self.pid = self.proc.pid
        if preload and not self.blas_loaded:
            log.warning("worker %s: %s was not loaded (LD_PRELOAD ignored?)", self.pid, preload)
        log.info(
            "started calculation worker pid %s: BLAS %s, OMP_NUM_THREADS=%s",
            self.pid, preload if self.blas_loaded else "bundled", threads,
        )

    def _receive(self) -> Any:
        try:
            status, value = self._recv.recv()
        except (EOFError, OSError):
            self.close(kill=True)
            raise CalculatorError(
                f"calculation worker died (exit status {self.proc.poll()}); see stderr above"
            ) from None
        if status == "err":
            raise value
        return value

    def call(self, func: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``module:function(*args, **kwargs)`` in the worker and return its value."""
        try:
            self._send.send((func, args, kwargs))
            return self._receive()
        except KeyboardInterrupt:
            self.close(kill=True)
            raise

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self, kill: bool = False) -> None:
        """Stop the worker (politely unless ``kill``)."""
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                try:
                    self._send.send(None)
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for c in (self._send, self._recv):
            try:
                c.close()
            except OSError:
                pass


def call_in_worker(preload: str | None, threads: int, func: str, *args: Any, **kwargs: Any) -> Any:
    """Run ``func`` ("module:function") in a pooled worker with that BLAS and thread count."""
    key = (preload, threads)
    with _POOL_LOCK:
        idle = [w for w in _POOL.get(key, []) if w.alive]
        worker = idle.pop() if idle else None
        _POOL[key] = idle
    if worker is None:
        worker = Worker(preload, threads)
    try:
        value = worker.call(func, *args, **kwargs)
    except BaseException:
        if worker.alive:
            with _POOL_LOCK:
                _POOL.setdefault(key, []).append(worker)
        raise
    with _POOL_LOCK:
        _POOL.setdefault(key, []).append(worker)
    return value


def worker_info(preload: str | None, threads: int) -> dict[str, Any]:
    """Facts about a pooled worker: pid, whether the preload is loaded, BLAS libraries mapped."""
    return call_in_worker(preload, threads, "hetflow.calculators._worker:_info")


def shutdown_workers() -> None:
    """Stop all pooled workers (registered with :mod:`atexit`)."""
    with _POOL_LOCK:
        workers = [w for ws in _POOL.values() for w in ws]
        _POOL.clear()
    for w in workers:
        w.close()


atexit.register(shutdown_workers)


# ----------------------------------------------------------------------------- child side


def _info() -> dict[str, Any]:
    from hetflow.calculators.blas import loaded_libraries

    return {
        "pid": os.getpid(),
        "LD_PRELOAD": os.environ.get("LD_PRELOAD", ""),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "blas_libraries": [p for p in loaded_libraries() if "blas" in p.lower() or "lapack" in p.lower()],
    }


def _import(module: str) -> None:
    """Import ``module`` in the worker (e.g. to load a library before timing)."""
    importlib.import_module(module)


def _resolve(path: str):
    mod, _, name = path.partition(":")
    return getattr(importlib.import_module(mod), name)


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it pickles, else a CalculatorError with its message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return CalculatorError(f"{type(exc).__name__}: {exc}")


def _watch_parent() -> None:
    """Exit when the parent dies, so an orphaned worker never keeps writing checkpoints."""
    parent = os.getppid()
    try:  # Linux: SIGKILL at once when the parent dies, even inside a long C call
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass

    def loop() -> None:
        import time

        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=loop, daemon=True, name="parent-watch").start()


def _serve(rfd: int, wfd: int) -> None:
    _watch_parent()
    recv = Connection(rfd, writable=False)
    send = Connection(wfd, readable=False)
    preload = os.environ.get("LD_PRELOAD", "").split(":")[0]
    send.send(("ok", {"preload_loaded": bool(preload) and process_has(preload)}))
    while True:
        try:
            msg = recv.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        func, args, kwargs = msg
        try:
            value = _resolve(func)(*args, **kwargs)
            send.send(("ok", value))
        except Exception as exc:  # noqa: BLE001 - forwarded to the parent (HetflowError included)
            send.send(("err", _portable(exc)))


if __name__ == "__main__":
    # ERROR by default: what this child would warn about (SCF recovery steps, unconverged
    # relaxations) is returned in the CalcResult and reported by the parent; its stderr is
    # the terminal a progress bar is drawn on
    logging.basicConfig(level=os.environ.get("HETFLOW_WORKER_LOGLEVEL", "ERROR"))
    _serve(int(sys.argv[1]), int(sys.argv[2]))
