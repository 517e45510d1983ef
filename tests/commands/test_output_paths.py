"""An output path that cannot be written is one line and exit 2, before any work, with nothing written.

Bad paths: an existing directory, a path under a regular file (fails even for root), a read-only
directory and a directory without search permission (both skipped as root, who ignores modes).
Every command checks its output before working, so an exit 2 with nothing on stdout means no
benchmark ran, no data was loaded and no network was traced.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

GENOTYPE = {
    "space": "darts",
    "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["max_pool_3x3", 0], ["dil_conv_3x3", 2],
               ["sep_conv_5x5", 1], ["avg_pool_3x3", 3], ["skip_connect", 0], ["sep_conv_3x3", 4]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 0],
               ["dil_conv_5x5", 2], ["sep_conv_3x3", 0], ["skip_connect", 2], ["avg_pool_3x3", 1]],
}  # fmt: skip

# command -> arguments before ``--out PATH`` (``{run}`` is a train run with a checkpoint)
COMMANDS = {
    "export-json": ("export", "{run}", "--format", "json"),
    "export-torchscript": ("export", "{run}", "--format", "torchscript"),
    "data-preview": ("data", "preview", "--data", "synth:fer", "--n", "4"),
    "data-synth": ("data", "synth", "--format", "fer2013", "--n", "10"),
    "bench-nas": ("bench", "nas"),
    "bench-hash": ("bench", "hash"),
    "bench-index": ("bench", "index"),
    "bench-data": ("bench", "data"),
    "bench-hpo": ("bench", "hpo"),
    "bench-face": ("bench", "face"),
}
BAD = ("existing-dir", "under-a-file", "read-only-dir", "no-permission-dir")


def _train_run(db_url: str) -> int:
    import torch

    from automl.checkpoint import save_checkpoint
    from automl.store import open_store
    from automl.training import build_network

    store = open_store(db_url)
    torch.manual_seed(0)
    options = {"init_channels": 4, "layers": 3}
    model, _ = build_network(GENOTYPE, in_channels=1, num_outputs=3, image_size=16, options=options)
    meta = {"genotype": model.genotype, "space": "darts", "in_channels": 1, "image_size": 16,
            "num_outputs": 3, "class_names": ["x", "y", "z"], "task": "fer",
            "network_options": options}  # fmt: skip
    run_id = store.create_run(kind="train", config={}, space="darts", task="fer")
    info = save_checkpoint(store.run_dir(run_id) / "model.safetensors", model.eval(), meta)
    store.add_checkpoint(run_id, info.path, sha256=info.sha256, kind="weights")
    store.set_state(run_id, "completed")
    return run_id


def _bad_path(kind: str, base: Path, directory_output: bool) -> tuple[Path, Path]:
    """(the --out to pass, the directory that must stay unchanged)."""
    base.mkdir()
    if kind == "existing-dir":
        (base / "out").mkdir()
        return base / "out", base / "out"
    if kind == "under-a-file":
        (base / "file.txt").write_text("keep")
        return base / "file.txt" / ("out" if directory_output else "out.json"), base
    locked = base / "locked"
    locked.mkdir()
    locked.chmod(0o555 if kind == "read-only-dir" else 0o000)
    return locked / ("out" if directory_output else "out.json"), locked


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_unwritable_output_is_one_line_exit_2_before_any_work(cli, db_url, tmp_path, command, kind):
    if IS_ROOT and kind in ("read-only-dir", "no-permission-dir"):
        pytest.skip("root ignores directory permissions (under-a-file covers root)")
    directory_output = command == "data-synth"
    if directory_output and kind == "existing-dir":
        pytest.skip("data synth writes into a directory: an existing one is its normal case")
    args = list(COMMANDS[command])
    if "{run}" in args:
        args[args.index("{run}")] = str(_train_run(db_url))
    out, watched = _bad_path(kind, tmp_path / "target", directory_output)
    before = sorted(os.listdir(watched)) if kind in ("existing-dir", "under-a-file") else None
    try:
        res = cli("--db", db_url, *args, "--out", out)
    finally:
        if kind in ("read-only-dir", "no-permission-dir"):
            watched.chmod(0o755)
    assert res.code == 2, (res.code, res.out, res.err)
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.err
    assert "cannot write" in lines[0] and "Traceback" not in res.err
    assert res.out.strip() == "", res.out  # no table, no "wrote ...": the work never started
    if before is not None:
        assert sorted(os.listdir(watched)) == before
    else:
        assert os.listdir(watched) == []
    if kind == "under-a-file":
        assert (tmp_path / "target" / "file.txt").read_text() == "keep"
