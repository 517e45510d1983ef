"""The ``automl`` command line: one Typer app, thin commands that call library functions.

Bad input surfaces as :class:`automl.errors.UserError`; :func:`main` prints its one-line message
and exits with code 2 instead of showing a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from rich.markup import escape

from automl.commands import bench_app
from automl.commands.common import err_console
from automl.errors import UserError
from automl.redact import redact

app = typer.Typer(
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
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: str = typer.Option(
        None,
        "--db",
        help="Store URL (SQLAlchemy). Default: $AUTOML_DB or sqlite:///automl.db in the working directory.",
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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    _CURRENT_ARGV[:] = args
    try:
        app(args=args, prog_name="automl")
    except UserError as exc:
        # Any password a message quotes (a store URL, a connection string) is hidden.
        err_console.print(f"[bold red]error:[/] {escape(redact(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
