"""The ``hetflow`` command line.

Every user-fixable problem surfaces as one line ``error: …`` and exit status 2.
Subcommands live in :mod:`hetflow.commands` (one module per command group) and are
registered in :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import sys

import click

from hetflow import __version__
from hetflow.errors import HetflowError

#: modules under hetflow.commands that each define ``register(group)``
COMMAND_MODULES: list[str] = [
    "phases",
    "build",
    "exchange",
    "workflow",
    "calc",
    "reproduce",
]


class _Group(click.Group):
    """Click group that turns HetflowError — and file-system errors such as an output path
    under a regular file — into a one-line message (exit 2)."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except HetflowError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hetflow")
@click.option("-v", "--verbose", count=True, help="More log output: -v info (e.g. relaxations stopped at "
              "their step cap), -vv debug.")
@click.option("-q", "--quiet", is_flag=True, help="Log errors only.")
def app(verbose: int = 0, quiet: bool = False) -> None:
    """hetflow — build, run and analyse halide-perovskite heterostructure models."""
    from hetflow.workflows.progress import setup_logging

    setup_logging(-1 if quiet else verbose)


for _name in COMMAND_MODULES:
    importlib.import_module(f"hetflow.commands.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        app.main(args=argv, prog_name="hetflow", standalone_mode=True)
    except SystemExit as exc:  # click exits through SystemExit
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
