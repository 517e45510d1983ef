"""``automl train --occlude --distill-from`` and ``--save-attention``: real runs in a real store."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from automl.checkpoint import load_checkpoint
from automl.store import open_store

FER = {"space": "face", "task": "fer", "head": "linear", "depths": [1, 1, 1], "ops": ["mb_k3_e3"] * 3}
AU = {**FER, "task": "au", "head": "au_attention"}
DARTS = {
    "space": "darts",
    "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["max_pool_3x3", 0], ["dil_conv_3x3", 2],
               ["sep_conv_3x3", 1], ["avg_pool_3x3", 3], ["skip_connect", 0], ["sep_conv_3x3", 4]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 0],
               ["dil_conv_3x3", 2], ["sep_conv_3x3", 0], ["skip_connect", 2], ["avg_pool_3x3", 1]],
}  # fmt: skip
TINY_TOML = """
[data]
image_size = 16
n = 64
[train]
epochs = 1
batch_size = 32
init_channels = 4
layers = 2
"""


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, genotype in (("fer", FER), ("au", AU), ("darts", DARTS)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(genotype))
    paths["config"] = tmp_path / "tiny.toml"
    paths["config"].write_text(TINY_TOML)
    return paths


def _train(cli, db_url, *args):
    res = cli("--db", db_url, "train", *args, "--json")
    assert res.code == 0, res.err
    return json.loads(res.out)


def test_distilled_student_trains_on_occluded_faces_and_stores_its_settings(cli, db_url, files):
    teacher = _train(cli, db_url, files["fer"], "--config", files["config"])
    student = _train(
        cli, db_url, files["fer"], "--config", files["config"], "--occlude", "upper",
        "--distill-from", str(teacher["run_id"]), "--temperature", "2.5", "--triplet-weight", "0.5",
    )  # fmt: skip
    store = open_store(db_url)
    run = store.get_run(student["run_id"])
    assert run["state"] == "completed" and run["summary"]["occlude"] == "upper"
    settings = run["summary"]["distill"]
    assert (settings["temperature"], settings["triplet_weight"], settings["kd_weight"]) == (2.5, 0.5, 1.0)
    assert settings["teacher_run_id"] == teacher["run_id"] and settings["init_from_teacher"] is True
    assert settings["teacher_sha256"] == load_checkpoint(teacher["checkpoint"]).sha256
    meta = load_checkpoint(student["checkpoint"]).meta
    assert meta["occlude"] == "upper" and meta["distill"]["temperature"] == 2.5
    assert student["distill"]["teacher_checkpoint"] == teacher["checkpoint"]
    # the teacher can also be named by its checkpoint path
    by_path = _train(cli, db_url, files["fer"], "--config", files["config"], "--occlude", "lower",
                     "--distill-from", teacher["checkpoint"])  # fmt: skip
    assert by_path["distill"]["teacher_run_id"] is None and by_path["distill"]["occlude"] == "lower"


def test_bad_teachers_are_one_line_exit_2(cli, db_url, files, tmp_path):
    occluded = _train(cli, db_url, files["fer"], "--config", files["config"], "--occlude", "lower")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    missing = tmp_path / "nope.safetensors"
    cases = [
        (("--occlude", "lower", "--distill-from", missing), "checkpoint not found"),
        (("--occlude", "lower", "--distill-from", missing), "written by a training run) (--distill-from)"),
        (("--occlude", "lower", "--distill-from", junk), "not a valid safetensors checkpoint"),
        (("--occlude", "lower", "--distill-from", "999"), "unknown run id 999"),
        (("--occlude", "lower", "--distill-from", str(occluded["run_id"])), "trained on occluded faces"),
        (("--distill-from", str(occluded["run_id"])), "add --occlude lower"),
        (("--occlude", "lower", "--distill-from", "1", "--temperature", "0"), "temperature must be positive"),
    ]
    store = open_store(db_url)
    before = len(store.list_runs(kind="train"))
    for args, message in cases:
        res = cli("--db", db_url, "train", files["fer"], "--config", files["config"], *args)
        assert res.code == 2, (args, res.err)
        assert message in res.err and "Traceback" not in res.err, (args, res.err)
        assert len(res.err.strip().splitlines()) == 1, res.err
    assert len(store.list_runs(kind="train")) == before  # no run was started for bad input


def test_save_attention_writes_one_png_per_face_and_au(cli, db_url, files, tmp_path):
    out_dir = tmp_path / "attention"
    res = _train(cli, db_url, files["au"], "--config", files["config"], "--data", "synth:au",
                 "--save-attention", out_dir)  # fmt: skip
    aus = load_checkpoint(res["checkpoint"]).meta["class_names"]
    assert len(aus) > 1
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted(res["attention_files"])
    assert not [n for n in names if n.startswith(".")]  # no temp files left behind
    for face in range(4):
        assert f"face{face:02d}.png" in names
        for au in aus:
            image = Image.open(out_dir / f"face{face:02d}_{au}.png")
            assert image.size == (16, 16) and image.mode == "L"
    assert len(names) == 4 * (len(aus) + 1)
    summary = open_store(db_url).get_run(res["run_id"])["summary"]
    assert summary["attention_files"] == len(names) and summary["attention_dir"] == str(out_dir)


@pytest.mark.parametrize("genotype", ["darts", "fer"])
def test_save_attention_without_an_attention_head_is_a_clear_error(cli, db_url, files, tmp_path, genotype):
    data = ("--data", "synth:au") if genotype == "darts" else ()
    res = cli("--db", db_url, "train", files[genotype], "--config", files["config"], *data,
              "--save-attention", tmp_path / "att")  # fmt: skip
    assert res.code == 2 and "has no attention maps" in res.err and "Traceback" not in res.err
    assert "(--save-attention)" in res.err
    assert not (tmp_path / "att").exists()
    assert open_store(db_url).list_runs(kind="train") == []


def test_concat_with_a_second_student_fits_a_classifier_on_both_embeddings(cli, db_url, files):
    cfg = ("--config", files["config"])
    teacher = _train(cli, db_url, files["fer"], *cfg)
    kd = _train(
        cli, db_url, files["fer"], *cfg, "--occlude", "lower", "--distill-from", str(teacher["run_id"])
    )
    both = _train(
        cli, db_url, files["fer"], *cfg, "--occlude", "lower", "--distill-from", str(teacher["run_id"]),
        "--kd-weight", "0", "--triplet-weight", "1", "--concat-with", str(kd["run_id"]),
    )  # fmt: skip
    concat = open_store(db_url).get_run(both["run_id"])["summary"]["concat"]
    assert concat["run_id"] == kd["run_id"] and 0.0 <= concat["test_metric"] <= 1.0
    assert both["concat"]["test_metrics"]["accuracy"] == concat["test_metric"]
    # the partner must have seen the same occlusion, and concatenation needs distillation
    for extra, message in (
        (("--occlude", "upper", "--distill-from", str(teacher["run_id"]), "--concat-with", str(kd["run_id"])),
         "concatenate students trained on the same occlusion"),
        (("--occlude", "lower", "--concat-with", str(kd["run_id"])), "add --distill-from"),
    ):  # fmt: skip
        res = cli("--db", db_url, "train", files["fer"], *cfg, *extra)
        assert res.code == 2 and message in res.err and len(res.err.strip().splitlines()) == 1, res.err
