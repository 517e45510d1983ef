"""The in-memory data set every consumer (NAS, training, HPO, hashing) works on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class FaceData:
    """Train and held-out splits as uint8 image tensors plus labels.

    Images stay uint8 (N, C, H, W) so a whole small split fits on a GPU; models convert batches
    to float32 in [0, 1] (see :func:`automl.data.augment.to_float`). ``train_x`` may wrap a
    memory-mapped cache, so it is only paged in when batches are read.

    Labels: ``task == "fer"``: int64 (N,) class indices, or float32 (N, K) probability rows (FER+
    probability mode); ``task == "au"``: float32 (N, A) of 0/1 occurrences.

    ``train_sources`` / ``test_sources``: for data read from image files, the absolute path of the
    file behind each row of ``train_x`` / ``test_x`` (a retrieval index built from the data set
    records them, so a hit can be opened); None for data without files (synthetic, FER2013 CSV,
    CIFAR-10 batches). Code that keeps a subset or reorders rows must do the same to these lists,
    or set them to None; :func:`FaceData.sources` ignores a list whose length does not match.

    ``hflip_ok``: whether a horizontally mirrored image keeps its label, so training may flip at
    random. True for faces (expression labels are flip-invariant, AUs are bilateral) and natural
    images (cifar10); the ``folder:`` reader says False, because its content is unknown and digits
    or text are not mirror-invariant (real MNIST, 10 epochs: 0.768 test accuracy with flips in the
    old default augmentation, 0.920 with only the flip removed). ``augment.flip`` overrides it.
    """

    name: str
    task: str
    class_names: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_subjects: np.ndarray | None = None
    test_subjects: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    hflip_ok: bool = True
    train_sources: list[str] | None = field(default=None, repr=False)
    test_sources: list[str] | None = field(default=None, repr=False)

    def sources(self, split: str) -> list[str] | None:
        """The file paths of the rows of ``split`` (``train``, ``test`` or ``all``: train then test),
        or None when the data has none (or a list that no longer matches its split's rows)."""
        parts = {"train": [self.train_sources], "test": [self.test_sources]}
        parts["all"] = parts["train"] + parts["test"]
        sizes = {"train": [len(self.train_x)], "test": [len(self.test_x)]}
        sizes["all"] = sizes["train"] + sizes["test"]
        got = parts[split]
        if any(s is None or len(s) != n for s, n in zip(got, sizes[split], strict=True)):
            return None
        return [str(p) for s in got for p in s]

    @property
    def num_outputs(self) -> int:
        """Logits the model must produce: classes (fer) or AUs (au)."""
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    def __len__(self) -> int:
        return int(self.train_x.shape[0])

    def summary(self) -> str:
        """One line for logs: name, task, sizes, shape."""
        return (
            f"{self.name}: {self.task} {self.num_outputs} outputs, train {len(self.train_x)}, "
            f"test {len(self.test_x)}, {self.in_channels}x{self.image_size}x{self.image_size}"
        )

    def label_counts(self) -> dict[str, dict[str, int]]:
        """``{"train"|"test": {class or AU name: count}}``: samples of each class (a probability row
        counts for its most likely class), or occurrences of each AU."""
        counts = {}
        for split, y in (("train", self.train_y), ("test", self.test_y)):
            if self.task == "au":
                c = y.sum(0).tolist()
            elif y.dim() == 2:
                c = y.argmax(1).bincount(minlength=self.num_outputs).tolist()
            else:
                c = y.bincount(minlength=self.num_outputs).tolist()
            counts[split] = dict(zip(self.class_names, [int(v) for v in c], strict=True))
        return counts

    def describe(self) -> dict[str, object]:
        """Name, task, split sizes, channels, image size, distinct subjects and :meth:`label_counts`."""

        def subjects(ids: np.ndarray | None) -> int | None:
            return None if ids is None else len(set(ids.tolist()))

        return {
            "name": self.name,
            "task": self.task,
            "train": len(self.train_x),
            "test": len(self.test_x),
            "channels": self.in_channels,
            "image_size": self.image_size,
            "subjects_train": subjects(self.train_subjects),
            "subjects_test": subjects(self.test_subjects),
            "counts": self.label_counts(),
        }
