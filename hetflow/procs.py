"""Process identity on this host: who owns a lock, a claim or a temporary file, and is it alive.

An owner is recorded as ``{"pid", "host", "start", "boot"}``: the process start time (clock
ticks since boot, ``/proc/<pid>/stat`` field 22) and the boot id tell a live owner from a
dead one whose pid was reused or from an owner of a previous boot.  Owners on another host
cannot be checked from here (callers use a lease time-out for those).
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def hostname() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (None when unknown or gone)."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    try:  # the command name (field 2) is in parentheses and may hold spaces
        rest = data[data.rindex(b")") + 2:].split()
        return int(rest[19])
    except (ValueError, IndexError):
        return None


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as fh:
            data = fh.read()
        return data[data.rindex(b")") + 2:].split()[0].decode()
    except (OSError, ValueError, IndexError):
        return None


def me() -> dict[str, Any]:
    """Identity of this process."""
    pid = os.getpid()
    return {"pid": pid, "host": hostname(), "start": start_time(pid), "boot": boot_id()}


def pid_alive(pid: int) -> bool:
    """A process ``pid`` exists on this host and is not a zombie."""
    try:
        pid = int(pid)
        if pid <= 0:
            return False
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OverflowError, ValueError, TypeError):
        return False
    return _state(pid) not in ("Z", "X")


def owner_state(owner: Any) -> str:
    """``"alive"``, ``"dead"`` (checked here) or ``"remote"`` (another host: unknown)."""
    if not isinstance(owner, dict):
        return "dead"
    if owner.get("host") != hostname():
        return "remote"
    if owner.get("boot") and boot_id() and owner.get("boot") != boot_id():
        return "dead"
    pid = owner.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return "dead"
    start = owner.get("start")
    if isinstance(start, int) and start_time(pid) not in (None, start):
        return "dead"  # the pid was reused by another process
    return "alive"


def describe(owner: Any) -> str:
    """``pid 123 on host`` for messages."""
    if not isinstance(owner, dict):
        return "an unknown process"
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"


# ----------------------------------------------------------------------------- signals
class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP received: handled like Ctrl-C (SIGINT) — clean shutdown."""

    def __init__(self, signum: int):
        import signal

        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@contextmanager
def signals_as_interrupt():
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread,
    so the same clean-up as for Ctrl-C runs (workers stopped, claims released).  Handlers
    installed by the caller are left alone; outside the main thread this does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, frame):  # noqa: ARG001
        raise Interrupted(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # pragma: no cover - not the main interpreter
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            try:
                signal.signal(sig, old)
            except (ValueError, OSError):  # pragma: no cover
                pass


def die_with_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Make this (child) process end when ``parent_pid`` — its parent — ends, even by
    SIGKILL: Linux ``PR_SET_PDEATHSIG`` (SIGKILL on the parent's death) plus a watchdog
    thread that compares ``getppid()`` every ``interval`` seconds (other platforms, and a
    parent that died before this call)."""
    import signal
    import threading
    import time

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent_pid:
        os._exit(70)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(70)

    threading.Thread(target=watch, daemon=True, name="hetflow-parent-watch").start()
