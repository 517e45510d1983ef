"""``automl doctor``: what this machine and installation can do, in one table.

The checks are :func:`automl.doctor.collect`; this command prints them.
"""

from __future__ import annotations

import typer
from rich.text import Text

from automl.commands.common import print_json, print_table, resolve_db_url
from automl.commands.options import JSON_TABLE_OPTION


def doctor(ctx: typer.Context, json_out: bool = JSON_TABLE_OPTION) -> None:
    """Versions, CUDA and GPUs, and whether the store is reachable.

    The store URL is shown with its password hidden.
    """
    from automl.doctor import collect

    info = collect(resolve_db_url(ctx))
    if json_out:
        print_json(info)
        return
    reachable = Text("yes", style="green") if info.get("db_reachable") else Text("no", style="red")
    rows = [[key, reachable if key == "db_reachable" else str(value)] for key, value in info.items()]
    print_table("automl doctor", [("what", {"style": "bold"}), "value"], rows, left=("what", "value"),
                show_header=False)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
