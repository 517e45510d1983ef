"""Typer sub-applications, one module per command group, registered in :mod:`automl.cli`.

Every module here exposes ``register(app: typer.Typer) -> None``. Benchmarks from several
modules share the one ``bench`` group defined below so that ``automl bench nas|hash|index|data``
is a single command group no matter which module owns each benchmark.
"""

import typer

bench_app = typer.Typer(
    help="Benchmarks: print a table, write JSON, compare side by side in one run.",
    no_args_is_help=True,
)
