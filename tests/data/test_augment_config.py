"""``[augment]`` -> :class:`Augment`: sizes scale with the image, the data set says whether to flip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from automl.config import AugmentSection, Config, validate_config
from automl.data.augment import Augment, augment_for, build_augment, scaled_pixels
from automl.data.spec import load_data
from automl.errors import UserError
from automl.training import train_genotype


def _digits_folder(root: Path, n_per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for c in ("0", "1"):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_padding_and_cutout_scale_with_the_image_side():
    section = AugmentSection(crop_fraction=0.125, cutout_fraction=0.25)
    sizes = {size: build_augment(section, image_size=size) for size in (8, 16, 32, 48)}
    assert {s: (a.crop_padding, a.cutout) for s, a in sizes.items()} == {
        8: (1, 2),
        16: (2, 4),
        32: (4, 8),  # the old fixed 4 px / 8 px at 32 px
        48: (6, 12),
    }
    assert scaled_pixels(0.0, 48) == 0 and scaled_pixels(0.01, 16) == 1  # on means at least 1 px
    assert Augment.full(16).settings() == {
        "crop_padding": 2, "flip": True, "rotate_deg": 10.0, "brightness": 0.2, "contrast": 0.2, "cutout": 4
    }  # fmt: skip


def test_the_default_is_flips_only_where_the_data_allows_them():
    faces = build_augment(AugmentSection(), image_size=32, hflip_ok=True)
    assert faces.settings() == {
        "crop_padding": 0, "flip": True, "rotate_deg": 0.0, "brightness": 0.0, "contrast": 0.0, "cutout": 0
    }  # fmt: skip
    assert not build_augment(AugmentSection(), image_size=16, hflip_ok=False).active
    assert Augment.default().settings() == faces.settings()


def test_flip_auto_follows_the_data_set_and_true_false_override_it():
    auto = AugmentSection()
    assert build_augment(auto, image_size=16, hflip_ok=True).flip
    assert not build_augment(auto, image_size=16, hflip_ok=False).flip
    assert build_augment(AugmentSection(flip=True), image_size=16, hflip_ok=False).flip
    assert not build_augment(AugmentSection(flip=False), image_size=16, hflip_ok=True).flip


def test_every_knob_is_honoured_and_all_off_is_inactive():
    section = AugmentSection(
        flip=True, crop_fraction=0.25, rotate_deg=5, brightness=0.1, contrast=0.3, cutout_fraction=0.5
    )
    assert build_augment(section, image_size=16).settings() == {
        "crop_padding": 4,
        "flip": True,
        "rotate_deg": 5.0,
        "brightness": 0.1,
        "contrast": 0.3,
        "cutout": 8,
    }
    off = AugmentSection(
        flip=False, crop_fraction=0, rotate_deg=0, brightness=0, contrast=0, cutout_fraction=0
    )
    assert not build_augment(off, image_size=32).active


def test_the_search_uses_only_crop_and_flip():
    section = AugmentSection(crop_fraction=0.125, rotate_deg=10, cutout_fraction=0.25)
    aug = build_augment(section, image_size=32, hflip_ok=True, purpose="search")
    assert aug.settings() == {
        "crop_padding": 4, "flip": True, "rotate_deg": 0.0, "brightness": 0.0, "contrast": 0.0, "cutout": 0
    }  # fmt: skip


def test_augment_for_reads_the_switches_and_the_data(tmp_path):
    data = load_data(f"folder:{_digits_folder(tmp_path / 'digits')}", image_size=16, channels=1)
    cfg = validate_config({"augment": {"crop_fraction": 0.125, "cutout_fraction": 0.25}})
    train_aug = augment_for(cfg, data)
    assert train_aug is not None and not train_aug.flip and train_aug.crop_padding == 2
    assert train_aug.cutout == 4 and augment_for(cfg, data, purpose="search").settings()["cutout"] == 0
    assert not augment_for(Config(), data).active  # the default on a folder: nothing
    off = validate_config({"train": {"augment": False}, "data": {"augment": False}})
    assert augment_for(off, data) is None and augment_for(off, data, purpose="search") is None
    flipped = validate_config({"augment": {"flip": True}})
    assert augment_for(flipped, data).flip


def test_folder_says_no_flips_faces_say_yes(tmp_path):
    folder = load_data(f"folder:{_digits_folder(tmp_path / 'digits')}", image_size=12, channels=1)
    assert folder.hflip_ok is False
    again = load_data(f"folder:{tmp_path / 'digits'}", image_size=12, channels=1)  # from the cache
    assert again.meta["cache"] == folder.meta["cache"] and again.hflip_ok is False
    assert load_data("synth:fer", n=20, image_size=16).hflip_ok is True


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"crop_fraction": 0.7}, "augment.crop_fraction"),
        ({"cutout_fraction": -0.1}, "augment.cutout_fraction"),
        ({"rotate_deg": 400}, "augment.rotate_deg"),
        ({"brightness": 1.5}, "augment.brightness"),
        ({"flip": "sometimes"}, "augment.flip"),
        ({"flip": 1}, "augment.flip"),
        ({"cutout": 8}, "augment.cutout"),  # the old pixel knob is not a key
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(section, key):
    with pytest.raises(UserError) as info:
        validate_config({"augment": section}, "x.toml")
    message = str(info.value)
    assert f"'{key}'" in message and "\n" not in message


def test_old_configs_without_an_augment_section_still_validate():
    cfg = validate_config({"train": {"augment": False}, "data": {"augment": True}})
    assert cfg.augment == AugmentSection() and cfg.model_dump()["augment"]["flip"] == "auto"


def test_train_genotype_records_the_augmentation_it_used(tmp_path):
    from automl.config import TrainSection
    from automl.data.tasks import make_task

    data = load_data(f"folder:{_digits_folder(tmp_path / 'digits', 8)}", image_size=16, channels=1)
    genotype = json.loads(
        '{"space": "face", "task": "fer", "head": "linear", "depths": [1, 1, 1],'
        ' "ops": ["mb_k3_e3", "mb_k3_e3", "mb_k3_e3"]}'
    )
    tiny = TrainSection(epochs=1, batch_size=8, init_channels=4, layers=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cropped = AugmentSection(crop_fraction=0.125)
        result = train_genotype(genotype, data, make_task(data), tiny, device="cpu", augment_cfg=cropped)
        custom = train_genotype(
            genotype, data, make_task(data), tiny, device="cpu",
            augment_cfg=AugmentSection(flip=True, cutout_fraction=0.5),
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert result.meta["augment"]["flip"] is False and result.meta["augment"]["crop_padding"] == 2
    assert custom.meta["augment"]["flip"] is True and custom.meta["augment"]["cutout"] == 8
