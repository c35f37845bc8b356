"""The ``hetflow`` command line.

Every user-fixable problem surfaces as one line ``error: …`` and exit status 2.
Subcommands live in :mod:`hetflow.commands` (one module per command group) and are
registered in :data:`COMMAND_MODULES`.

The edge of the CLI is here, once for every command:

* :func:`_harden` wraps every option and argument in the validation layer
  (:mod:`hetflow.validate`): numbers finite and within the bounds of
  :data:`hetflow.validate.CLI_NUMBERS`, text valid UTF-8 without control characters,
  size-like options (:data:`hetflow.validate.SIZES`) checked as a whole, output files
  (:data:`hetflow.validate.CLI_OUTPUT_FILES`) new or regular files — all before any work.
* :func:`error_line` is the one place that turns an exception into the one-line message:
  HetflowError as it is, click usage errors, file-system errors (with the path), undecodable
  text, memory and recursion exhaustion, and — as ``internal error: …`` — anything else
  (``HETFLOW_DEBUG=1`` shows the traceback instead).
* SIGTERM and SIGHUP stop a command like Ctrl-C (exit status 128 + signal number).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

import click

from hetflow import __version__, validate
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


def error_line(exc: BaseException) -> str:
    """The one-line ``error:`` text of an exception (without the ``error: `` prefix)."""
    if isinstance(exc, click.ClickException):
        text = exc.format_message()
        ctx = getattr(exc, "ctx", None)
        if isinstance(exc, click.UsageError) and ctx is not None:
            text = f"{ctx.command_path}: {text}"
    elif isinstance(exc, HetflowError):
        text = str(exc)
    elif isinstance(exc, OSError):
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            text = f"disk full (or quota exceeded){where}"
        else:
            text = f"{exc.strerror or exc}{where}"
    elif isinstance(exc, UnicodeError):
        text = f"text that is not valid UTF-8 ({exc})"
    elif isinstance(exc, MemoryError):
        text = "out of memory (is the input far larger than intended?)"
    elif isinstance(exc, RecursionError):
        text = "input nested too deeply"
    else:
        text = (f"internal error: {type(exc).__name__}: {exc} "
                "(please report it; HETFLOW_DEBUG=1 shows the traceback)")
    return validate.printable(text) or type(exc).__name__


class _Group(click.Group):
    """Click group whose subcommands' failures become one line ``error: …`` (exit 2)."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place exceptions become one line
            if os.environ.get("HETFLOW_DEBUG") and not isinstance(exc, (HetflowError, click.ClickException)):
                raise
            click.echo(f"error: {error_line(exc)}", err=True)
            ctx.exit(2)


# ----------------------------------------------------------------------------- validated options
class _Checked(click.ParamType):
    """A parameter type that runs the original conversion, then the validation layer."""

    def __init__(self, inner: click.ParamType, opt: str, rule: dict | None):
        self.inner, self.opt, self.rule = inner, opt, rule
        self.name = inner.name

    def __getattr__(self, item):  # choices, envvar_list_splitter … of the wrapped type
        if item == "inner":
            raise AttributeError(item)
        return getattr(self.inner, item)

    def get_metavar(self, *args, **kwargs):
        return self.inner.get_metavar(*args, **kwargs)

    def shell_complete(self, ctx, param, incomplete):
        return self.inner.shell_complete(ctx, param, incomplete)

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            try:
                validate.text(value, self.opt, allow_empty=True)
            except HetflowError as exc:
                raise click.UsageError(str(exc), ctx) from None
        out = self.inner.convert(value, param, ctx)
        try:
            if isinstance(self.inner, click.types.IntParamType) and not isinstance(out, bool):
                rule = self.rule or {"lo": -validate.CLI_DEFAULT_BOUND, "hi": validate.CLI_DEFAULT_BOUND}
                out = validate.integer(out, self.opt, lo=rule.get("lo"), hi=rule.get("hi"))
            elif isinstance(self.inner, click.types.FloatParamType):
                rule = self.rule or {"lo": -validate.CLI_DEFAULT_BOUND, "hi": validate.CLI_DEFAULT_BOUND}
                out = validate.number(out, self.opt, **rule)
            elif isinstance(out, str):
                validate.text(out, self.opt, allow_empty=True)
        except HetflowError as exc:  # the message names the option already
            raise click.UsageError(str(exc), ctx) from None
        return out


def _rule_callback(check, opt: str):
    """A click callback running a whole-value rule of the validation layer (a size as a
    whole, an output path) after the per-value conversion; ``None`` (option not given) passes."""

    def callback(ctx, param, value):
        if value is None or (isinstance(value, tuple) and not value):
            return value
        try:
            out = check(value, opt)
        except HetflowError as exc:
            raise click.UsageError(str(exc), ctx) from None
        return value if out is None else out

    return callback


def _check_size(name: str, value, opt: str):
    """A size-like option by its rule in :data:`hetflow.validate.SIZES`; a ``--size`` that is
    not positive is left to the builder, whose own check (the same rule) says "size must be
    positive" before anything is built."""
    if name == "size" and isinstance(value, tuple) and any(isinstance(v, int) and v <= 0 for v in value):
        return value
    return validate.check_size(name, value, opt)


def _check_output(value, opt: str):
    if value != "-":  # '-' is stdout where an option allows it
        validate.output_file(value, f"{opt}")
    return value


def _harden(cmd: click.Command) -> None:
    """Wrap every parameter of ``cmd`` (recursively) in the validation layer."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _harden(sub)
    for p in cmd.params:
        if isinstance(p.type, (_Checked, click.types.BoolParamType)):
            continue
        opt = f"--{p.name.replace('_', '-')}" if isinstance(p, click.Option) else p.name.upper()
        if isinstance(p, click.Option) and p.opts:
            opt = max(p.opts, key=len)
        p.type = _Checked(p.type, opt, validate.CLI_NUMBERS.get(p.name))
        if p.callback is not None or getattr(p, "multiple", False):
            continue
        if p.name in validate.SIZES:  # sizes as a whole (n1·n2·n3, m1·m2), before anything is built
            p.callback = _rule_callback(lambda v, o, name=p.name: _check_size(name, v, o), opt)
        elif p.name in validate.CLI_OUTPUT_FILES:  # outputs: new or regular files, refused before the work
            p.callback = _rule_callback(_check_output, opt)


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
_harden(app)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: the exit status (0 ok, 1 a task failed, 2 an error,
    128 + n after signal n)."""
    from hetflow.procs import Interrupted, signals_as_interrupt

    for stream in (sys.stdout, sys.stderr):  # a non-UTF-8 file name never crashes a print
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    try:
        with signals_as_interrupt():
            rv = app.main(args=argv, prog_name="hetflow", standalone_mode=False)
        return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except SystemExit as exc:  # commands exit through sys.exit(1) when a task failed
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.Abort as exc:  # Ctrl-C (click turns KeyboardInterrupt into Abort)
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, Interrupted):
            click.echo(f"error: {cause}; finished results are kept — run the same command again to "
                       "continue", err=True)
            return 128 + cause.signum
        click.echo("error: interrupted", err=True)
        return 130
    except Interrupted as exc:
        click.echo(f"error: {exc}", err=True)
        return 128 + exc.signum
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except click.ClickException as exc:  # usage errors of the top-level group
        click.echo(f"error: {error_line(exc)}", err=True)
        return 2
    except BrokenPipeError:  # `hetflow results | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except Exception as exc:  # noqa: BLE001 - failures outside a subcommand (loading, parsing)
        if os.environ.get("HETFLOW_DEBUG"):
            raise
        click.echo(f"error: {error_line(exc)}", err=True)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
