"""Searched network -> a stand-alone model file that runs without this package.

Contract of the TorchScript export (the hashing side, ``hashing/stream.py``, relies on it):

* ``forward(x)``: ``x`` float32 ``(N, C, H, W)`` in [0, 1] -> logits ``(N, num_outputs)``; eval
  mode, no auxiliary head;
* ``embed(x)`` -> ``(N, D)``: the penultimate features (what the final linear classifier sees);
* a sidecar ``<file>.json`` with ``in_channels``, ``image_size``, ``task``, ``class_names``,
  ``embedding_dim``, ``genotype``, ``space`` (plus ``num_outputs``, ``metrics``, ``sha256``); the
  same JSON is embedded in the archive as the extra file ``automl.json``.

Why tracing and not scripting: the searched networks are built from Python lists of ops chosen by
the genotype and carry training-only branches (drop-path, auxiliary head); tracing in eval mode
records exactly the deployed computation, and the result needs only ``torch`` to load. The
wrapper splits the network at its final ``nn.Linear`` classifier (``classifier``/``fc``/``head``/
``linear``) unless the network offers its own ``embed``; the split is checked numerically against
the original network before anything is written.

ONNX gets one graph with two outputs, ``logits`` and ``embedding``, and a dynamic batch axis; it
is verified with onnxruntime. ``json`` is the genotype plus metadata. ``nni`` (optional extra) is
an NNI frozen-architecture dict (:mod:`search_spaces.nni_export`), checked by instantiating it
through NNI before it is written.
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from automl.atomic import atomic_write, atomic_write_bytes, check_writable
from automl.checkpoint import (
    atomic_write_json,
    load_checkpoint,
    sha256_file,
    sidecar_path,
    to_json,
)
from automl.errors import UserError
from automl.export_formats import DEFAULT_FILENAMES, EXPORT_FORMATS, check_format  # noqa: F401 (re-exported)
from automl.training import build_network, split_output

CLASSIFIER_NAMES = ("classifier", "fc", "head", "linear")
SIDECAR_KEYS = ("in_channels", "image_size", "num_outputs", "task", "class_names", "genotype", "space")


@dataclass(frozen=True)
class ExportInfo:
    path: Path
    format: str
    sha256: str
    sidecar: Path | None
    meta: dict[str, Any]


# ------------------------------------------------------------------------------- the wrapper


class InferenceModel(nn.Module):
    """``forward`` -> logits, ``embed`` -> penultimate features, for any classifier network.

    Either ``head`` is the network's final linear layer and ``body`` the network with that layer
    replaced by identity (so ``body`` returns the features), or ``head`` is ``None`` and ``body``
    has its own ``embed`` method.
    """

    def __init__(self, body: nn.Module, head: nn.Module | None):
        super().__init__()
        self.body = body
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            logits, _ = split_output(self.body(x))
            return logits
        return self.head(self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            features = self.body.embed(x)
        else:
            features, _ = split_output(self.body(x))
        return torch.flatten(features, 1)


class _LogitsAndEmbedding(nn.Module):
    """One graph with both outputs (ONNX has a single entry point)."""

    def __init__(self, inner: InferenceModel):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.inner.embed(x)
        head = self.inner.head
        logits = head(features) if head is not None else self.inner(x)
        return logits, features


def inference_model(model: nn.Module, *, in_channels: int, image_size: int) -> InferenceModel:
    """Wrap a trained network (a copy; the original is untouched) and check the split is exact."""
    net = copy.deepcopy(model).cpu().eval()
    probe = _example_input(3, in_channels, image_size, seed=1)
    with torch.no_grad():
        expected, _ = split_output(net(probe))
    if callable(getattr(net, "embed", None)):
        wrapper = InferenceModel(net, None)
    else:
        name = next(
            (n for n in CLASSIFIER_NAMES if isinstance(getattr(net, n, None), nn.Linear)),
            None,
        )
        if name is None:
            raise UserError(
                f"cannot export {type(model).__name__}: it has no final nn.Linear classifier "
                f"(one of {', '.join(CLASSIFIER_NAMES)}) and no embed() method"
            )
        head = getattr(net, name)
        setattr(net, name, nn.Identity())
        wrapper = InferenceModel(net, head)
    wrapper.eval()
    with torch.no_grad():
        got = wrapper(probe)
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
        raise UserError(
            f"cannot export {type(model).__name__}: its classifier is not the last step of forward(), "
            "so the penultimate features cannot be cut out; give the network an embed() method"
        )
    return wrapper


def _example_input(n: int, in_channels: int, image_size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, in_channels, image_size, image_size, generator=gen)


# ------------------------------------------------------------------------------- the formats


def _sidecar_meta(meta: dict[str, Any], embedding_dim: int | None, fmt: str) -> dict[str, Any]:
    missing = [k for k in SIDECAR_KEYS if k not in meta]
    if missing:
        raise UserError(
            f"the checkpoint's description lacks {', '.join(missing)}; retrain with `automl train`"
        )
    out = {k: meta[k] for k in SIDECAR_KEYS}
    out.update(
        {
            "format": fmt,
            "embedding_dim": embedding_dim,
            "metrics": meta.get("metrics", {}),
            "primary_metric": meta.get("primary_metric"),
            "signal": meta.get("signal"),  # did training learn anything (automl.learning_checks)
            "face_crop": meta.get("face_crop"),  # the training faces' framing (automl.face_calibration)
            "data": meta.get("data"),
            "network_options": meta.get("network_options", {}),
            "params": meta.get("params"),
            "mflops": meta.get("mflops"),
            "input": {"dtype": "float32", "layout": "NCHW", "range": [0.0, 1.0]},
            "outputs": {"forward": "logits (no sigmoid / softmax)", "embed": "penultimate features (N, D)"},
            "source_checkpoint_sha256": meta.get("sha256"),
            "torch_version": torch.__version__,
        }
    )
    return out


def check_export_target(out: str | Path, fmt: str) -> None:
    """Fail before any tracing when ``out`` (or its sidecar) could not be written."""
    check_writable(out)
    if fmt in ("torchscript", "onnx"):
        check_writable(sidecar_path(out))


def export_torchscript(model: nn.Module, meta: dict[str, Any], out: str | Path) -> ExportInfo:
    """Trace the eval-mode network (``forward`` + ``embed``) and save it with its sidecar."""
    out = Path(out)
    c, s = int(meta["in_channels"]), int(meta["image_size"])
    wrapper = inference_model(model, in_channels=c, image_size=s)
    example = _example_input(2, c, s)
    with torch.no_grad():
        with warnings.catch_warnings():
            # Shape checks (e.g. odd sizes in FactorizedReduce) are constants for the fixed input size.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace_module(wrapper, {"forward": example, "embed": example})
        probe = _example_input(5, c, s, seed=2)  # another batch size: the trace must not bake it in
        for method in ("forward", "embed"):
            want = getattr(wrapper, method)(probe)
            got = getattr(traced, method)(probe)
            if not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
                raise RuntimeError(
                    f"traced {method}() differs from the network (max |diff| "
                    f"{(got - want).abs().max().item():.3g})"
                )
        embedding_dim = int(wrapper.embed(example).shape[1])
    side = _sidecar_meta(meta, embedding_dim, "torchscript")
    with atomic_write(out) as fh, warnings.catch_warnings():
        # TorchScript is deprecated upstream but is the contract here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(traced, fh, _extra_files={"automl.json": to_json(side)})
    digest = sha256_file(out)
    side["sha256"] = digest
    side["file"] = out.name
    atomic_write_json(sidecar_path(out), side)
    return ExportInfo(path=out, format="torchscript", sha256=digest, sidecar=sidecar_path(out), meta=side)


def _onnx_export(
    pair: nn.Module, example: torch.Tensor, path: Path, *, opset: int, dynamo: bool | None
) -> None:
    """The TorchScript-based exporter by default (about 10x faster to export these cell networks and
    silent); the ``torch.export``-based one with ``dynamo=True`` or where the old one is gone."""
    names = {"input_names": ["input"], "output_names": ["logits", "embedding"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if not dynamo:
            try:
                torch.onnx.export(
                    pair,
                    (example,),
                    str(path),
                    dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
                    opset_version=opset,
                    dynamo=False,
                    external_data=False,
                    **names,
                )
                return
            except (TypeError, NotImplementedError):
                if dynamo is False:
                    raise
        torch.onnx.export(
            pair,
            (example,),
            str(path),
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
            **names,
        )


def export_onnx(
    model: nn.Module, meta: dict[str, Any], out: str | Path, *, opset: int = 18, dynamo: bool | None = None
) -> ExportInfo:
    """ONNX graph ``input -> (logits, embedding)`` with a dynamic batch axis, checked by onnxruntime."""
    try:
        import onnx  # noqa: F401  (torch.onnx needs it)
        import onnxruntime as ort
    except ImportError:
        raise UserError("ONNX export needs onnx and onnxruntime (the 'export' extra)") from None
    out = Path(out)
    c, s = int(meta["in_channels"]), int(meta["image_size"])
    pair = _LogitsAndEmbedding(inference_model(model, in_channels=c, image_size=s)).eval()
    example = _example_input(2, c, s)
    # The exporters want a path; a scratch copy is verified, then written atomically to ``out``.
    with tempfile.TemporaryDirectory(prefix="automl-onnx-") as scratch:
        tmp = Path(scratch) / "model.onnx"
        _onnx_export(pair, example, tmp, opset=opset, dynamo=dynamo)
        probe = _example_input(5, c, s, seed=2)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got_logits, got_embed = session.run(["logits", "embedding"], {"input": probe.numpy()})
        with torch.no_grad():
            want_logits, want_embed = pair(probe)
        for name, got, want in (("logits", got_logits, want_logits), ("embedding", got_embed, want_embed)):
            if not torch.allclose(torch.from_numpy(got), want, rtol=1e-3, atol=1e-4):
                raise RuntimeError(f"onnxruntime {name} differ from PyTorch's; the ONNX export is wrong")
        embedding_dim = int(got_embed.shape[1])
        atomic_write_bytes(out, tmp.read_bytes())
    side = _sidecar_meta(meta, embedding_dim, "onnx")
    digest = sha256_file(out)
    side.update(
        {
            "sha256": digest,
            "file": out.name,
            "opset": opset,
            "inputs": ["input"],
            "output_names": ["logits", "embedding"],
        }
    )
    atomic_write_json(sidecar_path(out), side)
    return ExportInfo(path=out, format="onnx", sha256=digest, sidecar=sidecar_path(out), meta=side)


def export_json(genotype: dict[str, Any], meta: dict[str, Any], out: str | Path) -> ExportInfo:
    """The genotype plus what is known about it; ``automl train`` accepts this file back."""
    out = Path(out)
    payload = {k: v for k, v in meta.items() if k not in ("genotype",)}
    payload["genotype"] = genotype
    payload["space"] = genotype.get("space")
    payload["format"] = "json"
    atomic_write_json(out, payload)
    return ExportInfo(path=out, format="json", sha256=sha256_file(out), sidecar=None, meta=payload)


def nni_unavailable(reason: str = "") -> UserError:
    detail = f" ({reason})" if reason else ""
    return UserError(
        f"the NNI export format needs the optional NNI extra{detail}: pip install -e '.[nni]' "
        "(or export the genotype as json)",
        argument="format",
    )


def export_nni(
    genotype: dict[str, Any], meta: dict[str, Any], out: str | Path, *, sizes: dict[str, int],
    network_options: dict[str, Any], allow_user_code: str | None = None,
) -> ExportInfo:
    """The genotype as an NNI frozen architecture; NNI must rebuild it before anything is written.

    ``allow_user_code``: the ``nni:`` space the user chose explicitly (see
    :func:`automl.training.build_network`)."""
    from search_spaces.registry import UserCodeRefusedError

    try:
        from search_spaces.nni_export import instantiate, to_nni_frozen
    except ModuleNotFoundError as exc:
        raise nni_unavailable(str(exc).split(";")[0]) from None
    try:
        payload = to_nni_frozen(
            genotype, network_options=network_options, allow_user_code=allow_user_code, **sizes
        )
        # the round trip a user will do, before writing
        instantiate(json.loads(json.dumps(payload)), allow_user_code=allow_user_code)
    except UserCodeRefusedError as exc:
        raise UserError(str(exc), argument="space") from None
    except ValueError as exc:
        raise UserError(f"cannot export as NNI: {exc}") from None
    payload["genotype"] = genotype
    payload["meta"] = {k: v for k, v in meta.items() if k != "genotype"}
    out = Path(out)
    atomic_write_json(out, payload)
    return ExportInfo(path=out, format="nni", sha256=sha256_file(out), sidecar=None, meta=payload)


# ------------------------------------------------------------------------------- entry points


NETWORK_SIZES = ("in_channels", "num_outputs", "image_size")


def _network_description(meta: dict[str, Any], path: str | Path) -> dict[str, int]:
    """The sizes a checkpoint's description must give to rebuild its genotype's network."""
    missing = [k for k in ("genotype", *NETWORK_SIZES) if k not in meta]
    if missing:
        raise UserError(f"checkpoint {path} lacks {', '.join(missing)} in its description")
    return {k: int(meta[k]) for k in NETWORK_SIZES}


def _export_meta(path: str | Path) -> dict[str, Any]:
    """A checkpoint's description for a weight-free export, naming the checkpoint it came from."""
    ckpt = load_checkpoint(path)
    meta = {**ckpt.meta, "source_checkpoint_sha256": ckpt.sha256}
    meta.pop("sha256", None)
    return meta


def model_from_checkpoint(
    path: str | Path, *, allow_user_code: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained network described by a checkpoint and load its weights (eval mode).

    A checkpoint is data: a genotype of a user's NNI space is rebuilt only when
    ``allow_user_code`` is that space, the user's explicit choice."""
    ckpt = load_checkpoint(path)
    meta = dict(ckpt.meta)
    sizes = _network_description(meta, path)
    model, _space = build_network(
        meta["genotype"],
        **sizes,
        options=dict(meta.get("network_options", {})),
        allow_user_code=allow_user_code,
    )
    result = model.load_state_dict(ckpt.state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        bad = (result.missing_keys or result.unexpected_keys)[:3]
        raise UserError(f"checkpoint {path} does not fit the network of its genotype (e.g. {', '.join(bad)})")
    meta["sha256"] = ckpt.sha256
    return model.eval(), meta


def export_checkpoint(
    path: str | Path, fmt: str, out: str | Path, *, allow_user_code: str | None = None
) -> ExportInfo:
    """Export a trained checkpoint in ``fmt`` (one of :data:`EXPORT_FORMATS`) to ``out``."""
    check_format(fmt)
    check_export_target(out, fmt)
    if fmt == "nni":
        meta = _export_meta(path)
        sizes = _network_description(meta, path)
        return export_nni(meta["genotype"], meta, out, sizes=sizes,
                          network_options=dict(meta.get("network_options", {})),
                          allow_user_code=allow_user_code)
    if fmt == "json":
        meta = _export_meta(path)
        return export_json(meta["genotype"], meta, out)
    model, meta = model_from_checkpoint(path, allow_user_code=allow_user_code)
    if fmt == "torchscript":
        return export_torchscript(model, meta, out)
    return export_onnx(model, meta, out)


def export_genotype(
    genotype: dict[str, Any], fmt: str, out: str | Path, meta: dict[str, Any],
    *, sizes: dict[str, int] | None = None, network_options: dict[str, Any] | None = None,
    allow_user_code: str | None = None,
) -> ExportInfo:
    """Export an untrained genotype: ``json``, or ``nni`` (which needs the network ``sizes``)."""
    check_format(fmt)
    check_export_target(out, fmt)
    if fmt == "nni":
        if sizes is None:
            raise UserError("cannot export as NNI: the run does not record its input size and outputs")
        return export_nni(genotype, meta, out, sizes=sizes, network_options=dict(network_options or {}),
                          allow_user_code=allow_user_code)
    if fmt != "json":
        raise UserError(
            f"the export format {fmt} needs trained weights; train the architecture first "
            "(`automl train RUN_ID`) and export the train run, or export it as json",
            argument="format",
        )
    return export_json(genotype, meta, out)


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar JSON of an exported model file."""
    side = sidecar_path(path)
    if not side.is_file():
        raise UserError(f"{path} has no sidecar {side.name}; export it with `automl export`")
    return json.loads(side.read_text(encoding="utf-8"))
