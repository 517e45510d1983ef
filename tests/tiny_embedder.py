"""A tiny exported face embedder (TorchScript + sidecar) for the retrieval tests: the export
contract of ``automl export --format torchscript`` at a size that builds in milliseconds."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

CLASSES = ["happy", "sad", "surprise"]


class TinyEmbedder(torch.nn.Module):
    """The export contract: forward -> logits, exported embed -> (N, D) features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.fc = torch.nn.Linear(64, 16)
        self.head = torch.nn.Linear(16, 3)

    @torch.jit.export
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def write_tiny_embedder(folder: Path) -> Path:
    """``folder/model.pt`` (scripted, seeded) and its sidecar ``model.pt.json``."""
    torch.manual_seed(0)
    path = folder / "model.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(TinyEmbedder()).save(str(path))
    side = {"in_channels": 1, "image_size": 32, "task": "fer", "class_names": CLASSES, "embedding_dim": 16}
    path.with_name("model.pt.json").write_text(json.dumps(side))
    return path
