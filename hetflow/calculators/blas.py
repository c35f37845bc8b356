"""Which BLAS/LAPACK a calculation runs with, and how many threads.

The tblite wheel from PyPI bundles the reference netlib BLAS/LAPACK.  Debian's OpenBLAS
(``/usr/lib/x86_64-linux-gnu/libopenblas.so.0``) exports the same Fortran symbols, so
preloading it (``LD_PRELOAD``) makes tblite use it — 5–8× faster on the clusters hetflow
computes, with the same energy.  ``LD_PRELOAD`` only acts when a process starts, so hetflow
runs tblite in a worker process started with the library preloaded
(:mod:`hetflow.calculators._worker`), unless the current process already has it.

Choice (first match wins):

1. ``spec.settings["blas"]`` or the environment variable ``HETFLOW_BLAS``:
   ``"auto"`` (default: OpenBLAS when the file exists, else the bundled BLAS in-process),
   ``"openblas"`` (required; error when missing), ``"bundled"`` (run in-process with whatever
   the process has), or a path to a BLAS shared library to preload.
2. Threads: ``spec.settings["threads"]``, else ``HETFLOW_THREADS``, else ``OMP_NUM_THREADS``
   of this process, else the number of CPUs.  The worker gets ``OMP_NUM_THREADS`` and
   ``OPENBLAS_NUM_THREADS`` set to that number.

Prefer the environment variables over the settings for choices that do not change the
physics: settings enter the content key of a calculation (:func:`calc_key`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from hetflow.errors import CalculatorError, InputError

log = logging.getLogger("hetflow.calculators.blas")

#: Candidate locations of an optimised BLAS with the standard Fortran symbols.
OPENBLAS_CANDIDATES: tuple[str, ...] = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)

#: Set in the worker's environment so that it never starts a worker of its own.
IN_WORKER_ENV = "HETFLOW_IN_WORKER"


@dataclass(frozen=True)
class BlasChoice:
    """How to run: ``preload`` is the library to ``LD_PRELOAD`` in a worker (None: in-process).

    ``label`` is what the log says (e.g. ``"OpenBLAS /usr/lib/…/libopenblas.so.0"``).
    """

    preload: str | None
    threads: int
    label: str

    @property
    def use_worker(self) -> bool:
        return self.preload is not None


def find_openblas() -> str | None:
    """Path of the system OpenBLAS, or None when none is installed."""
    for p in OPENBLAS_CANDIDATES:
        if Path(p).exists():
            return p
    return None


def loaded_libraries() -> list[str]:
    """Shared libraries mapped into this process (Linux ``/proc/self/maps``; [] elsewhere)."""
    try:
        text = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    libs = {line.split()[-1] for line in text.splitlines() if ".so" in line.split()[-1]}
    return sorted(libs)


def process_has(library: str) -> bool:
    """True when ``library`` (a path) is already loaded into this process."""
    real = os.path.realpath(library)
    return any(os.path.realpath(p) == real for p in loaded_libraries())


def default_threads() -> int:
    """Threads for a calculation when nothing else is set: OMP_NUM_THREADS, else all CPUs."""
    for var in ("HETFLOW_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v:
            try:
                return max(1, int(v.split(",")[0]))
            except ValueError:
                raise InputError(f"{var}={v!r} is not a number of threads") from None
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def choose_blas(settings: dict | None = None) -> BlasChoice:
    """Decide the BLAS and thread count from settings / environment (see module doc)."""
    settings = settings or {}
    mode = str(settings.get("blas") or os.environ.get("HETFLOW_BLAS") or "auto").strip()
    threads_raw = settings.get("threads")
    try:
        threads = int(threads_raw) if threads_raw is not None else default_threads()
    except (TypeError, ValueError):
        raise InputError(f"settings 'threads' must be an integer, got {threads_raw!r}") from None
    if threads < 1:
        raise InputError(f"settings 'threads' must be >= 1, got {threads}")

    if mode == "bundled":
        return BlasChoice(None, threads, "as loaded in this process (bundled BLAS; blas='bundled')")
    if mode in ("auto", "openblas"):
        lib = find_openblas()
        if lib is None:
            if mode == "openblas":
                raise CalculatorError(
                    "blas='openblas' but no OpenBLAS found (looked in "
                    + ", ".join(OPENBLAS_CANDIDATES) + "); install libopenblas0 or use blas='bundled'"
                )
            return BlasChoice(None, threads, "bundled BLAS in-process (no OpenBLAS installed)")
    else:
        lib = mode
        if not Path(lib).is_file():
            raise InputError(
                f"blas={mode!r} is neither 'auto', 'openblas', 'bundled' nor an existing library file"
            )
    if os.environ.get(IN_WORKER_ENV) or process_has(lib):
        return BlasChoice(None, threads, f"{lib} (already loaded in this process)")
    return BlasChoice(lib, threads, f"{lib} (preloaded in a worker process)")
