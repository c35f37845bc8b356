"""Job-script rendering for Slurm, PBS and LSF from one set of validated fields.

Every user value is either validated against a strict pattern (partition, account, memory,
walltime, environment names, directives) or shell-quoted (paths, modules, environment values,
launcher words); job names are sanitised to ``[A-Za-z0-9._-]``.  The only verbatim field is
``setup`` (shell lines the user writes on purpose, e.g. ``source ~/venv/bin/activate``).
"""

from __future__ import annotations

import math
import re
import shlex
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import jinja2

from hetflow.errors import WorkflowError
from hetflow.hpc_templates import SCHEDULERS, TEMPLATE_DIR
from hetflow.workflows._taskdir import safe_name

_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.,:+@%-]+$")
_MEMORY = re.compile(r"^\d+(\.\d+)?[KMGTkmgt]?[Bb]?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIRECTIVE_BAD = re.compile(r"[\n\r;&|$`<>\\]")
_MAX_WALLTIME_S = 366 * 86400


def parse_walltime(value: str | int | float) -> int:
    """Walltime in seconds from ``HH:MM:SS``, ``D-HH:MM:SS``, ``MM:SS`` or minutes (int/str)."""
    if isinstance(value, bool):
        raise WorkflowError(f"invalid walltime {value!r}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise WorkflowError(f"walltime must be a finite number of minutes, got {value!r}")
        if value <= 0:
            raise WorkflowError(f"walltime must be positive, got {value!r} minutes")
        if value > _MAX_WALLTIME_S / 60:
            raise WorkflowError(f"walltime {value!r} minutes is more than a year")
        return int(math.ceil(value * 60))
    if not isinstance(value, str):
        raise WorkflowError(f"invalid walltime {value!r}; use HH:MM:SS, D-HH:MM:SS or minutes")
    s = str(value).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?", s)
    if not m:
        raise WorkflowError(f"invalid walltime {value!r}; use HH:MM:SS, D-HH:MM:SS or minutes")
    days, a, b, c = m.groups()
    a = int(a)
    if days is None and b is None:  # plain minutes
        secs = a * 60
    elif days is None and c is None:  # MM:SS
        secs = a * 60 + int(b)
    else:
        h, mi, se = a, int(b or 0), int(c or 0)
        secs = int(days or 0) * 86400 + h * 3600 + mi * 60 + se
        if (b is not None and int(b) > 59) or (c is not None and int(c) > 59):
            raise WorkflowError(f"invalid walltime {value!r}: minutes and seconds must be < 60")
    if days is None and b is not None and c is None and int(b) > 59:
        raise WorkflowError(f"invalid walltime {value!r}: seconds must be < 60")
    if secs <= 0:
        raise WorkflowError(f"walltime must be positive, got {value!r}")
    if secs > _MAX_WALLTIME_S:
        raise WorkflowError(f"walltime {value!r} is more than a year")
    return secs


def _hms(secs: int) -> str:
    return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def _slurm_time(secs: int) -> str:
    d, rest = divmod(secs, 86400)
    return f"{d}-{_hms(rest)}" if d else _hms(rest)


def _lsf_time(secs: int) -> str:
    minutes = math.ceil(secs / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


@dataclass
class JobResources:
    """Scheduler-independent request for one job.

    partition: Slurm partition / PBS or LSF queue.  account: project to charge.
    nodes, ntasks (MPI ranks in total), threads (cpus per task = OMP_NUM_THREADS).
    walltime: ``HH:MM:SS``, ``D-HH:MM:SS`` or minutes.  memory: e.g. ``4G`` (per node).
    modules: ``module load`` names.  env: environment variables to export.
    setup: verbatim shell lines run before the launch line.  launcher: words put before the
    worker command (e.g. ``["srun"]``).  extra_directives: raw scheduler options, one per line.
    """

    partition: str | None = None
    account: str | None = None
    nodes: int = 1
    ntasks: int = 1
    threads: int = 1
    walltime: str | int = "01:00:00"
    memory: str | None = None
    modules: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    launcher: list[str] = field(default_factory=list)
    extra_directives: list[str] = field(default_factory=list)
    python: str = field(default_factory=lambda: sys.executable)

    def __post_init__(self) -> None:
        self._normalise_lists()
        for name in ("partition", "account"):  # fullmatch: "$" would let a trailing newline through
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not _SAFE_WORD.fullmatch(v)):
                raise WorkflowError(f"invalid {name} {v!r}: only letters, digits and _.,:+@%- allowed")
        for name in ("nodes", "ntasks", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WorkflowError(f"{name} must be a positive integer, got {v!r}")
        if self.ntasks < self.nodes:
            raise WorkflowError(f"ntasks ({self.ntasks}) must be >= nodes ({self.nodes})")
        self.walltime_seconds = parse_walltime(self.walltime)
        if self.memory is not None and not _MEMORY.fullmatch(str(self.memory)):
            raise WorkflowError(f"invalid memory {self.memory!r}; use e.g. 4G or 4000M")
        for k in self.env:
            if not _ENV_NAME.fullmatch(str(k)):
                raise WorkflowError(f"invalid environment variable name {k!r}")
        for d in self.extra_directives:
            if _DIRECTIVE_BAD.search(str(d)):
                raise WorkflowError(f"invalid scheduler directive {d!r}: no newlines or shell metacharacters")
        for s in self.setup:
            if "\n" in str(s):
                raise WorkflowError("setup lines must be single lines (give a list)")

    def _normalise_lists(self) -> None:
        """List fields through the validation layer: a single string is one entry
        (``modules: "cp2k/2023.1"`` → ``["cp2k/2023.1"]``; ``launcher: "srun --mpi=pmix"`` →
        its shell words), never split per character; ``env`` must be a mapping."""
        from hetflow import validate
        from hetflow.errors import InputError

        try:
            self.modules = validate.str_list(self.modules, "modules", single="wrap")
            self.setup = validate.str_list(self.setup, "setup", single="wrap")
            self.extra_directives = validate.str_list(self.extra_directives, "extra_directives", single="wrap")
            self.launcher = validate.str_list(self.launcher, "launcher", single="split")
            env = validate.mapping(self.env, "env")
            for k, v in env.items():
                if isinstance(v, bool) or not isinstance(v, (str, int, float)) or v is None:
                    raise InputError(f"env.{k} must be a string or a number, got {validate.shown(v)}")
                validate.text(str(v), f"env.{k}", allow_empty=True)
            self.env = {k: str(v) for k, v in env.items()}
            self.python = validate.text(self.python, "python")
            for name in ("partition", "account", "memory"):
                v = getattr(self, name)
                if v is not None and not isinstance(v, str) and not (name == "memory" and isinstance(v, int)):
                    raise InputError(f"{name} must be a string, got {type(v).__name__} {validate.shown(v)}")
        except InputError as exc:
            raise WorkflowError(str(exc)) from None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JobResources":
        if not isinstance(d, dict):
            raise WorkflowError(f"job options must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(map(str, d)) - known
        if unknown:
            raise WorkflowError(f"unknown job option(s): {', '.join(sorted(unknown))}")
        return cls(**d)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["q"] = lambda v: shlex.quote(str(v))
    return env


def render_job(scheduler: str, res: JobResources, job_name: str, workdir: str | Path,
               command: list[str] | None = None) -> str:
    """The job script text.  ``command``: worker command words (default: the hetflow worker
    on ``workdir``); every word is shell-quoted."""
    if scheduler not in SCHEDULERS:
        raise WorkflowError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    import hetflow

    command = command or [res.python, "-m", "hetflow.workflows._worker", str(workdir)]
    launch = " ".join(shlex.quote(str(w)) for w in [*res.launcher, *command])
    per_node = math.ceil(res.ntasks / res.nodes)
    text = _env().get_template(f"{scheduler}.sh.j2").render(
        version=hetflow.__version__, job_name=safe_name(job_name), partition=res.partition,
        account=res.account, nodes=res.nodes, ntasks=res.ntasks, ntasks_per_node=per_node,
        threads=res.threads, memory=res.memory, walltime_seconds=res.walltime_seconds, walltime_slurm=_slurm_time(res.walltime_seconds),
        walltime_hms=_hms(res.walltime_seconds), walltime_lsf=_lsf_time(res.walltime_seconds),
        extra_directives=list(res.extra_directives), workdir=str(workdir),
        modules=list(res.modules), env=sorted((str(k), str(v)) for k, v in res.env.items()),
        setup=list(res.setup), launch=launch,
    )
    return text.rstrip() + "\n"
