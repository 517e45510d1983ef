"""The ``automl`` command line: one Typer app, thin commands that call library functions.

Bad input surfaces as :class:`automl.errors.UserError`; :func:`main` prints its one-line message
and exits with code 2 instead of showing a traceback. Click's usage errors (an unknown option, a
missing argument, a value of the wrong type) get the same treatment: one ``error:`` line on
stderr naming the option and the command's ``--help``, exit code 2, instead of Typer's box.

Building the app must stay cheap (``automl --help`` in well under a second): the command modules
import torch, numpy, SQLAlchemy, Optuna, FAISS... inside the functions that use them, never at
module level; ``tests/commands/test_cli_surface.py`` checks it.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperGroup

from automl import __version__
from automl.commands import bench_app
from automl.commands.common import err_console
from automl.errors import UserError
from automl.redact import redact

try:  # Typer 0.2x ships its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older Typer runs on click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]


class _Interrupted(Exception):
    """Carries a ``KeyboardInterrupt`` out of a command past Typer, which would otherwise turn it
    into a bare exit code 130 and lose what :func:`main` reports (the run, the signal)."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__(str(interrupt))
        self.interrupt = interrupt


class AutomlGroup(TyperGroup):
    """The root group: lets a command's ``KeyboardInterrupt`` reach :func:`main`."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _Interrupted(exc) from exc


app = typer.Typer(
    cls=AutomlGroup,
    name="automl",
    help="AutoML for faces: DDPNAS architecture search for AU detection and FER, online hashing "
    "retrieval, and a dashboard.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module registers its own commands; the order is the order in `automl --help`.
COMMAND_MODULES = (
    "search",
    "train",
    "hpo",
    "export",
    "predict",
    "runs",
    "data",
    "index",
    "dashboard",
    "doctor",
    "bench_nas",
    "bench_hash",
    "bench_data",
    "bench_hpo",
    "bench_face",
    "bench_predict",
    "bench_dashboard",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"automl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    db: str = typer.Option(
        None,
        "--db",
        help="Store URL (SQLAlchemy). Default: $AUTOML_DB or sqlite:///automl.db in the working directory.",
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    ctx.obj = {"db": db or os.environ.get("AUTOML_DB") or "sqlite:///automl.db"}


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        module_name = f"automl.commands.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command group not present in this build
            if exc.name == module_name:
                continue
            raise
        module.register(app)
    app.add_typer(bench_app, name="bench")


_register_commands()


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--db URL`` / ``--db=URL`` to the front so it works after any sub-command too."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == "--db" and i + 1 < len(argv):
            hoisted = ["--db", argv[i + 1]]
            i += 2
            continue
        if arg.startswith("--db="):
            hoisted = ["--db", arg.split("=", 1)[1]]
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


_CURRENT_ARGV: list[str] = []


def current_argv() -> list[str]:
    """The arguments of the running command (after global-option hoisting), e.g. to re-launch it."""
    return list(_CURRENT_ARGV)


# Placeholders shown in --help (and in error messages) for options whose name says what they
# take; any other option shows its type (TEXT, INTEGER, FLOAT, PATH, [a|b|c]) and a flag nothing.
OPTION_METAVARS = {
    "--db": "URL",
    "--storage": "URL",
    "--pg-url": "URL",
    "--data": "KIND:PATH",
    "--resume": "RUN_ID",
    "--distill-from": "RUN_ID|CKPT",
    "--concat-with": "RUN_ID|CKPT",
    "--index": "INDEX_DIR",
}
ARGUMENT_METAVARS = {
    "run_id": "RUN_ID",
    "target": "RUN_ID|GENOTYPE_FILE",
    "directory": "INDEX_DIR",
    "image": "IMAGE",
}
_TYPE_METAVARS = {
    "int": "INTEGER",
    "int range": "INTEGER",
    "float": "FLOAT",
    "float range": "FLOAT",
    "str": "TEXT",
    "path": "PATH",
    "list[Path]": "PATH",
    "list[str]": "TEXT",
    "bool": "",
}


def _type_metavar(param: Any) -> str | None:
    """Typer's ``<int>`` / ``<a|b>`` type label as a classic placeholder (``INTEGER`` / ``[a|b]``)."""
    if getattr(param, "is_flag", False):
        return ""
    display = getattr(param, "display_type", None)
    if display is None:  # older Typer: click's own metavars are already uppercase placeholders
        return None
    try:
        label = str(display(None)).strip("<>")
    except Exception:  # noqa: BLE001 - a type Typer cannot describe without a context: leave it
        return None
    if "|" in label and "[" not in label:
        return f"[{label}]"
    return _TYPE_METAVARS.get(label)


def _no_type_label(ctx: Any = None) -> None:
    return None


def normalize_metavars(command: Any) -> Any:
    """One set of placeholders across every command's help: URL, KIND:PATH, RUN_ID, PATH..."""
    for param in getattr(command, "params", []):
        if param.param_type_name == "argument":
            name = ARGUMENT_METAVARS.get(param.name or "")
            if name is not None:
                param.metavar = name
            elif param.metavar is None and param.name:
                param.metavar = param.name.upper()
            if hasattr(param, "display_type_rich"):  # the placeholder says it all: no <int> beside it
                param.display_type_rich = _no_type_label
            continue
        long_names = [o for o in param.opts if o.startswith("--")]
        named = next((OPTION_METAVARS[o] for o in long_names if o in OPTION_METAVARS), None)
        if named is not None and not getattr(param, "is_flag", False):
            param.metavar = named
        elif param.metavar is None:
            metavar = _type_metavar(param)
            if metavar is not None:
                param.metavar = metavar
    try:  # the --help option is made on first use: make it now, without a type label
        help_option = command.get_help_option(typer.Context(command))
    except Exception:  # noqa: BLE001 - not a click command we know: its help stays as it is
        help_option = None
    if help_option is not None:
        help_option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        normalize_metavars(sub)
    return command


def build_command() -> Any:
    """The click command tree of :data:`app`, placeholders normalised."""
    return normalize_metavars(typer.main.get_command(app))


def _param_label(param: Any) -> str:
    """``--strategy`` for an option, ``RUN_ID`` for an argument."""
    if param.param_type_name == "argument":
        return str(param.metavar or (param.name or "argument").upper())
    long_names = [o for o in param.opts if o.startswith("--")]
    return (long_names or list(param.opts) or [str(param.name)])[0]


_CHOICES = re.compile(r"^(?P<value>.+?) is not (?:one of )?(?P<choices>'.*')$")


def _clean(message: str) -> str:
    """A click / Typer message as the tail of one ``error:`` line."""
    text = " ".join(str(message).split()).rstrip(".")
    text = re.sub(r"^Value error, ", "", text)  # Typer's validation (pydantic) prefix
    text = re.sub(r", unable to parse string as an? \w+$", "", text)
    match = _CHOICES.match(text)
    if match:
        choices = ", ".join(c.strip().strip("'") for c in match["choices"].split(","))
        text = f"{match['value']} is not one of {choices}"
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def usage_error_line(exc: Any) -> str:
    """One line for a click usage error: what is wrong, then where to read more.

    ``--strategy: 'foo' is not one of ddpnas, darts, random (see automl search --help)``.
    """
    param = getattr(exc, "param", None)
    if isinstance(exc, click_exceptions.MissingParameter):
        kind = exc.param_type or (param.param_type_name if param is not None else "parameter")
        name = _param_label(param) if param is not None else _clean(str(exc.param_hint or ""))
        text = f"missing {kind} {name}".rstrip()
    elif isinstance(exc, click_exceptions.BadParameter) and (param is not None or exc.param_hint):
        name = _param_label(param) if param is not None else _clean(str(exc.param_hint))
        text = f"{name}: {_clean(exc.message)}"
    else:
        text = _clean(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else _command_path(_CURRENT_ARGV)
    return f"{text} (see {path} --help)"


def _command_path(args: list[str]) -> str:
    """``automl runs list`` for ``runs list --limit``: the (sub-)commands named before the options."""
    command, words = build_command(), ["automl"]
    for arg in args[2:] if args[:1] == ["--db"] else args:  # hoisted to the front
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        command, words = sub, [*words, arg]
    return " ".join(words)


def _fail(line: str, code: int) -> None:
    err_console.print(f"[bold red]error:[/] {escape(redact(line))}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    _CURRENT_ARGV[:] = args
    try:
        try:
            code = build_command().main(args=args, prog_name="automl", standalone_mode=False)
        except _Interrupted as wrapped:
            raise wrapped.interrupt from None
    except click_exceptions.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `automl runs`: the help is already shown
            if exc.message.strip():  # plain (not rich) help comes as the message instead
                typer.echo(exc.message)
            sys.exit(exc.exit_code)
        _fail(usage_error_line(exc), exc.exit_code)
    except click_exceptions.ClickException as exc:  # e.g. a file click could not open
        _fail(_clean(exc.format_message()), exc.exit_code)
    except typer.Abort:  # end of input at a prompt
        err_console.print("[yellow]aborted[/]")
        sys.exit(1)
    except UserError as exc:
        from automl.commands.flags import with_flag_hint

        # The library's words plus the option that set the argument it is about (the one place
        # library errors get flags); any password a message quotes (a store URL) is hidden.
        line = with_flag_hint(str(exc), getattr(exc, "argument", None))
        err_console.print(f"[bold red]error:[/] {escape(redact(line))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        # Ctrl-C, SIGTERM or SIGHUP (automl.store.lifecycle): the run is marked interrupted.
        from automl.commands.common import interrupted_message

        db_url = args[1] if args[:1] == ["--db"] and len(args) > 1 else os.environ.get("AUTOML_DB")
        err_console.print(
            interrupted_message(exc, db_url), style="yellow", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(128 + int(getattr(exc, "signum", 2)))
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        sys.exit(code)  # typer.Exit(code) from a command


if __name__ == "__main__":
    main()
