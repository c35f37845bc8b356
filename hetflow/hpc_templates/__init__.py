"""Jinja2 job-script templates (Slurm, PBS, LSF), shipped as package data.

Fields (same for every scheduler; rendered by :mod:`hetflow.workflows._jobscript`):
job_name, partition (queue), account (project), nodes, ntasks, ntasks_per_node, threads
(cpus per task / OMP_NUM_THREADS), walltime, memory, modules, env, setup (verbatim shell
lines), launch (the command line), workdir, extra_directives, walltime_seconds (exported as
``HETFLOW_JOB_WALLTIME``; ``HETFLOW_JOB_DEADLINE`` = job start + walltime, for CP2K's WALLTIME).
"""

from pathlib import Path

TEMPLATE_DIR = Path(__file__).parent
SCHEDULERS = ("slurm", "pbs", "lsf")
