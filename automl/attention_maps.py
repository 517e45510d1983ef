"""Per-AU attention maps of an attention AU head, written as grey PNGs (one per test face and AU).

:func:`check_attention_head` fails before training when the network has no maps to write;
:func:`write_attention_maps` writes them after training, every file through
:func:`automl.atomic.atomic_write_bytes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl.errors import UserError
from automl.genotype_source import InputError

ATTENTION_SAMPLES = 4


def _has_attention(model: Any) -> bool:
    maps = getattr(model, "attention_maps", None)
    return callable(maps) and maps() is not None


def check_attention_head(
    genotype: dict[str, Any], data: Any, train_cfg: Any, *, allow_user_code: str | None = None
) -> None:
    """Fail before training when the network has no per-AU attention maps to save."""
    import torch

    from automl.training import build_network, network_options

    model, _ = build_network(
        genotype,
        in_channels=data.in_channels,
        num_outputs=data.num_outputs,
        image_size=data.image_size,
        options=network_options(train_cfg),
        allow_user_code=allow_user_code,
    )
    if callable(getattr(model, "attention_maps", None)):
        model.eval()
        with torch.no_grad():
            model(torch.zeros(2, data.in_channels, data.image_size, data.image_size))
    if not _has_attention(model):
        head = genotype.get("head")
        what = f"the {genotype['space']} genotype" + (f" with head {head!r}" if head else "")
        raise InputError(
            f"{what} has no attention maps; use a face-space AU genotype whose head is "
            "au_attention, au_transformer or au_graph (a face-space search with task au)",
            argument="save_attention",
        )


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "x"


def _png_bytes(image: Any) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _attention_images(model: Any, x: Any, image_size: int) -> Any:
    import torch

    from search_spaces.face import attention_images

    model = model.cpu().eval()
    with torch.no_grad():
        model(x)
    maps = model.attention_maps() if callable(getattr(model, "attention_maps", None)) else None
    if maps is None:
        raise InputError("the trained network produced no attention maps", argument="save_attention")
    try:
        return attention_images(maps, image_size).numpy()
    except ValueError as exc:
        raise UserError(f"attention maps: {exc}") from None


def write_attention_maps(
    model: Any,
    data: Any,
    out_dir: str | Path,
    *,
    transform: Callable[[Any], Any] | None = None,
    samples: int = ATTENTION_SAMPLES,
) -> list[str]:
    """For the first ``samples`` test faces write ``faceNN.png`` (what the network saw) and
    ``faceNN_<AU>.png`` (that AU's attention map, min-max scaled, upsampled to the face size).
    Each file is written atomically. Returns the file names."""
    import torch

    from automl.atomic import atomic_write_bytes
    from automl.data.augment import to_float

    out_dir = Path(out_dir)
    x = to_float(data.test_x[:samples].cpu())
    if transform is not None:
        x = transform(x)
    images = _attention_images(model, x, data.image_size)
    faces = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    names = [_file_part(str(n)) for n in data.class_names]
    if len(names) != images.shape[1]:
        names = [f"au{j}" for j in range(images.shape[1])]
    written: list[str] = []
    for i in range(images.shape[0]):
        face = faces[i].transpose(1, 2, 0)
        face = face[..., 0] if face.shape[-1] == 1 else face
        files = [(f"face{i:02d}.png", face)]
        files += [(f"face{i:02d}_{name}.png", images[i, j]) for j, name in enumerate(names)]
        for file_name, image in files:
            atomic_write_bytes(out_dir / file_name, _png_bytes(image))
            written.append(file_name)
    return written
