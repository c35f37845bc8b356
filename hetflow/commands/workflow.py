"""``hetflow run | submit | status | results | render-job``: workflows from YAML files."""

from __future__ import annotations

import csv
import io
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from hetflow.atomic import write_atomic
from hetflow.errors import WorkflowError

# The engine's modules (workflows._engine, .store, .executors, ._status, ._jobscript, ._taskdir and
# .wfile) are imported inside the commands: they load ase.io (→ scipy) and networkx, ≈ 0.4 s that
# every `hetflow` call would pay at start-up.

_SCHEDULERS = ("slurm", "pbs", "lsf")


def _resource_options(f):
    """Job-resource options shared by ``submit`` and ``render-job``."""
    opts = [
        click.option("--partition", help="Slurm partition / PBS or LSF queue."),
        click.option("--account", help="Account or project to charge."),
        click.option("--nodes", type=int, help="Nodes per job."),
        click.option("--ntasks", type=int, help="MPI ranks per job."),
        click.option("--threads", type=int, help="Threads per rank (cpus-per-task, OMP_NUM_THREADS)."),
        click.option("--walltime", help="HH:MM:SS, D-HH:MM:SS or minutes."),
        click.option("--memory", help="Memory per node, e.g. 4G."),
        click.option("--module", "modules", multiple=True, help="`module load` name (repeatable)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _resource_overrides(**kw) -> dict:
    out = {k: v for k, v in kw.items() if v is not None and k != "modules"}
    if kw.get("modules"):
        out["modules"] = list(kw["modules"])
    return out


def _print_summary(summary, wfile) -> None:
    click.echo(f"{wfile.name}: {summary}")
    for name, msg in summary.failures.items():
        click.echo(f"  failed {name}: {msg.splitlines()[0]}")
    click.echo(f"store: {wfile.store_shown}   work dir: {wfile.workdir}")  # never a password


def result_rows(store, wfile=None, all_rows: bool = False) -> list[tuple[str, Any]]:
    """(task name, stored result) for every task of ``wfile`` that has a result, in workflow
    order — tasks that share a result (same structure and settings, one store row) are each
    listed — then the workflow's other rows (and with ``all_rows`` every other row of the
    store).  Without ``wfile``: one line per stored row, under the name that produced it."""
    out: list[tuple[str, Any]] = []
    listed: set[str] = set()
    if wfile is not None:
        from hetflow.workflows._engine import load_manifest

        man = load_manifest(wfile.workdir) or {}
        tasks = man.get("tasks") if isinstance(man.get("tasks"), dict) else {}
        by_key: dict[str, Any] = {}
        for name in wfile.task_names():
            t = tasks.get(name)
            key = t.get("key") if isinstance(t, dict) else None
            if not isinstance(key, str) or not key:
                continue
            if key not in by_key:
                by_key[key] = store.get(key)
            if by_key[key] is not None:
                out.append((name, by_key[key]))
                listed.add(key)
        extra = [r for r in store.rows(None if all_rows else wfile.name) if r.key not in listed]
        order = {n: i for i, n in enumerate(wfile.task_names())}
        extra.sort(key=lambda r: order.get(r.name, len(order)))
        return out + [(r.name, r) for r in extra]
    return [(r.name, r) for r in store.rows(None)]


def register(app: click.Group) -> None:
    @app.command("run")
    @click.argument("workflow", type=click.Path(dir_okay=False))
    @click.option("--workers", type=int, help="Worker processes (default: cores // threads).")
    @click.option("--threads", type=int, help="Threads per worker (OMP_NUM_THREADS, default 1).")
    @click.option("--max-retries", type=int, help="Resubmissions of a task whose worker died.")
    @click.option("--progress/--no-progress", default=None,
                  help="Progress display (default on: a bar on a terminal, a line per task and heartbeats otherwise).")
    def run_cmd(workflow, workers, threads, max_retries, progress):
        """Run WORKFLOW (YAML) attached: on this machine (local pool), or on a Dask cluster when
        the file says executor: {type: dask, …}; finished tasks are taken from the store."""
        from hetflow.workflows.wfile import load_workflow_file

        wfile = load_workflow_file(workflow)
        if wfile.executor.get("type", "local") not in ("local", "dask"):
            opts = {"type": "local"}
        else:
            opts = dict(wfile.executor)
        wfile.executor = opts
        ex = wfile.make_executor(workers=workers, threads=threads, max_retries=max_retries)
        show = True if progress is None else progress  # a bar on a terminal, plain lines otherwise
        summary = wfile.workflow.run(wfile.make_store(), ex, workdir=str(wfile.workdir), progress=show)
        _print_summary(summary, wfile)
        if not summary.ok:
            sys.exit(1)

    @app.command("submit")
    @click.argument("workflow", type=click.Path(dir_okay=False))
    @click.option("--scheduler", type=click.Choice(_SCHEDULERS), help="Batch system (default: executor.type of the file).")
    @_resource_options
    @click.option("--max-retries", type=int, help="Resubmissions of a vanished job (default 2).")
    @click.option("--wait/--detach", default=False, help="Stay attached until every task finished (default: detach).")
    @click.option("--poll", type=float, help="Seconds between squeue/qstat/bjobs polls (with --wait).")
    @click.option("--pack", type=int, help="Tasks per batch allocation (default 1: one job per task).")
    @click.option("--slots", type=int, help="Tasks run side by side inside one allocation (default 1: one after another).")
    @click.option("--chain/--no-chain", default=True, show_default=True,
                  help="Submit tasks that start from another task's result at once, behind the parent's job "
                       "(--dependency=afterok), so chains finish with the controller detached.")
    def submit_cmd(workflow, scheduler, max_retries, wait, poll, pack, slots, chain, **res):
        """Submit WORKFLOW's tasks as batch jobs.  Run it again to ingest finished jobs,
        resubmit vanished ones and submit tasks whose inputs are now ready."""
        from hetflow.workflows.executors import make_executor
        from hetflow.workflows.wfile import load_workflow_file

        wfile = load_workflow_file(workflow)
        ftype = wfile.executor.get("type", "local")
        scheduler = scheduler or (ftype if ftype in _SCHEDULERS else None)
        if scheduler is None:
            raise WorkflowError("no scheduler: give --scheduler slurm|pbs|lsf or executor.type in the file")
        opts = {k: v for k, v in wfile.executor.items() if k != "type"} if ftype == scheduler else {}
        opts |= _resource_overrides(**res)
        if max_retries is not None:
            opts["max_retries"] = max_retries
        if poll is not None:
            opts["poll"] = poll
        opts["detached"] = not wait
        opts["chain"] = chain
        for k, v in (("pack", pack), ("slots", slots)):
            if v is not None:
                opts[k] = v
        ex = make_executor(scheduler, **opts)
        summary = wfile.workflow.run(wfile.make_store(), ex, workdir=str(wfile.workdir))
        _print_summary(summary, wfile)
        if summary.pending:
            click.echo(f"{summary.pending} job(s) queued or running; check with `hetflow status {workflow}` "
                       f"and run `hetflow submit {workflow}` again to collect them")
        if summary.failed or summary.skipped:
            sys.exit(1)

    @app.command("status")
    @click.argument("workflow", required=False, type=click.Path(dir_okay=False))
    @click.option("--workdir", type=click.Path(file_okay=False), help="Work directory (instead of WORKFLOW).")
    @click.option("--lines", default=5, show_default=True, help="Log lines shown per failed/vanished task.")
    def status_cmd(workflow, workdir, lines):
        """Per-task state of a workflow, with log tails of failures and vanished jobs."""
        from hetflow.workflows._status import collect_status

        if workflow:
            from hetflow.workflows.wfile import load_workflow_file

            workdir = load_workflow_file(workflow, structures=False).workdir  # reads, never builds
        elif workdir is None:
            raise WorkflowError("give a workflow file or --workdir")
        rows, notes, header = collect_status(workdir, lines)
        click.echo(header)
        width = max([len(r[0]) for r in rows] + [4])
        click.echo(f"{'task':<{width}}  {'state':<10} {'job':<10} key")
        for name, state, job, key, msg in rows:
            click.echo(f"{name:<{width}}  {state:<10} {job:<10} {key}" + (f"  {msg}" if msg else ""))
        for n in notes:
            click.echo(n)

    @app.command("results")
    @click.argument("workflow", required=False, type=click.Path(dir_okay=False))
    @click.option("--store", "store_loc", help="Store path or postgresql:// URL (instead of WORKFLOW).")
    @click.option("--all", "all_rows", is_flag=True, help="Every row of the store, not only this workflow's.")
    @click.option("--csv", "csv_out", type=click.Path(dir_okay=False, allow_dash=True), help="Write CSV here ('-' = stdout).")
    def results_cmd(workflow, store_loc, all_rows, csv_out):
        """Energies (eV) of stored results as a table or CSV."""
        from hetflow.workflows.store import ResultStore

        wfname = None
        if workflow:
            from hetflow.workflows.wfile import load_workflow_file

            wfile = load_workflow_file(workflow, structures=False)  # reads, never builds
            store_loc, wfname = store_loc or wfile.store, wfile.name
        elif store_loc is None:
            raise WorkflowError("give a workflow file or --store")
        store = ResultStore(store_loc, readonly=True)  # reads only: creates nothing, no lock
        cols = ["task", "formula", "natoms", "energy_eV", "fmax_eV_per_A", "converged", "backend",
                "method", "calc_task", "key"]
        rows = []
        for name, r in result_rows(store, wfile if wfname else None, all_rows):
            fmax = "" if r.forces is None or not len(r.forces) else f"{float((r.forces ** 2).sum(axis=1).max() ** 0.5):.4f}"
            rows.append([name, r.atoms.get_chemical_formula(), len(r.atoms), f"{r.energy:.6f}", fmax,
                         r.converged, r.spec.backend, r.spec.method, r.spec.task, r.key])
        if csv_out:
            fh = io.StringIO(newline="")
            w = csv.writer(fh)
            w.writerow(cols)
            w.writerows(rows)
            if csv_out == "-":
                sys.stdout.write(fh.getvalue())
                return
            write_atomic(csv_out, fh.getvalue())
            click.echo(f"wrote {len(rows)} rows to {csv_out}", err=True)
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{len(rows)} result(s) in {store.shown}")
        for c in cols:
            table.add_column(c, justify="right" if c in ("natoms", "energy_eV", "fmax_eV_per_A") else "left")
        for row in rows:
            table.add_row(*map(str, row))
        Console(width=max(120, shutil.get_terminal_size().columns)).print(table)

    @app.command("render-job")
    @click.argument("workflow", required=False, type=click.Path(dir_okay=False))
    @click.option("--scheduler", type=click.Choice(_SCHEDULERS), default="slurm", show_default=True)
    @click.option("--task", "task_name", help="Task of WORKFLOW whose directory the job runs in.")
    @click.option("--job-name", help="Job name (sanitised to letters, digits, . _ -).")
    @click.option("--workdir", type=click.Path(file_okay=False), help="Task directory (without WORKFLOW).")
    @click.option("--command", "command", help="Command to run instead of the hetflow worker (quoted word by word).")
    @_resource_options
    def render_cmd(workflow, scheduler, task_name, job_name, workdir, command, **res):
        """Print a job script to submit by hand (sbatch / qsub / bsub < script)."""
        import shlex

        from hetflow.workflows._jobscript import JobResources, render_job
        from hetflow.workflows._taskdir import TaskDir

        opts = {}
        if workflow:
            from hetflow.workflows.wfile import load_workflow_file

            wfile = load_workflow_file(workflow, structures=False)  # reads, never builds
            if wfile.executor.get("type") in _SCHEDULERS:
                opts = {k: v for k, v in wfile.executor.items()
                        if k not in ("type", "max_retries", "poll", "detached", "pack", "slots", "chain",
                                     "max_restarts")}
            if task_name:
                if task_name not in wfile.task_names():
                    raise WorkflowError(f"no task {task_name!r} in {wfile.path.name} (tasks named by files "
                                        "or builders are known once the workflow has run or been submitted)")
                workdir = workdir or str(TaskDir.for_task(wfile.workdir, task_name).root.resolve())
        opts |= _resource_overrides(**res)
        resources = JobResources.from_dict(opts)
        workdir = str(Path(workdir or ".").resolve())
        try:
            cmd = shlex.split(command) if command else None
        except ValueError as exc:
            raise WorkflowError(f"--command: cannot split into words ({exc})") from None
        click.echo(render_job(scheduler, resources, job_name or task_name or "hetflow", workdir, cmd), nl=False)
