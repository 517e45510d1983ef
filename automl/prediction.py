"""``automl predict``: a found network applied to photos, folders and videos, one row per face.

The rows follow the column names of OpenFace's ``FeatureExtraction`` and LibreFace where they
exist, so scripts written for those tools read these files:

* ``source`` (the input file), ``frame`` (1-based; 1 for a photo), ``timestamp`` (seconds),
  ``face_id`` (0.., kept across frames by the tracker; empty for a frame with no face),
  ``success`` (1: a face, 0: a frame with no face, whose prediction columns are empty),
  ``confidence`` (the detector's score in (0, 1); 1 with ``--no-detect``), ``detected`` (1: found
  in this frame, 0: held from the last detection with ``--detect-every N``), and the face box
  ``face_x, face_y, face_width, face_height`` in frame pixels (the detector's box; the crop adds
  a 10% margin and keeps its centre square);
* AU models: ``AU01_c`` (OpenFace: presence, 0/1, at ``threshold``) for every AU, then
  ``AU01_p`` (its probability, a sigmoid of the logit). ``AU01_r`` intensities need an intensity
  head, which these models do not have, so no ``_r`` column is written;
* expression models: one column per class with its softmax probability (py-feat's convention;
  a class whose name clashes with a column above is prefixed ``p_``), and ``expression``: the
  most probable class.

Output is written as it is made: rows go to the file batch by batch (nothing is held but one
batch), through a temporary file that replaces the target only when the input is complete, so an
interrupted run leaves no half-written CSV (with ``out_dir``, the inputs finished before the
interruption keep theirs).

A model that learned nothing shows here as predictions that never change: the summary's
``signal`` runs the learning checks' collapse rule on the predictions (one class for at least 95%
of 30 or more faces; every AU constant), and the model's own training verdict from its sidecar
is carried over.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from automl.errors import UserError
from automl.face_calibration import check_face_crop
from automl.face_model import FaceModel, load_face_model
from automl.face_stream import FaceCrop, StreamSettings, StreamStats, face_batches
from automl.media import MediaError, MediaInput, check_media, discover_media

if TYPE_CHECKING:
    from automl.progress import ProgressCallback
    from automl.store import Store

FRAME_COLUMNS = (
    "source", "frame", "timestamp", "face_id", "success", "confidence", "detected",
    "face_x", "face_y", "face_width", "face_height",
)  # fmt: skip
FORMATS = ("csv", "jsonl")
MIN_FACES_FOR_COLLAPSE = 30
COLLAPSE_SHARE = 0.95


def au_column(name: str) -> str:
    """``AU1`` / ``au_01`` / ``12`` -> ``AU01`` / ``AU12`` (OpenFace's two digits); other names as given."""
    m = re.fullmatch(r"\s*(?:au)?[_ ]?0*(\d+)\s*", name, flags=re.IGNORECASE)
    return f"AU{int(m.group(1)):02d}" if m else name.strip()


def prediction_columns(task: str, class_names: Sequence[str]) -> list[str]:
    """The columns after :data:`FRAME_COLUMNS` for a model of ``task`` with ``class_names``."""
    if task == "au":
        aus = [au_column(n) for n in class_names]
        return [f"{a}_c" for a in aus] + [f"{a}_p" for a in aus]
    taken = set(FRAME_COLUMNS) | {"expression"}
    cols = [f"p_{n}" if n in taken else n for n in (str(c) for c in class_names)]
    if len(set(cols)) != len(cols):
        raise UserError(f"the model's class names are not unique as columns: {list(class_names)}")
    return [*cols, "expression"]


def columns_for(model: FaceModel) -> list[str]:
    return [*FRAME_COLUMNS, *prediction_columns(model.task, model.class_names)]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def _frame_part(c: FaceCrop) -> dict[str, Any]:
    row: dict[str, Any] = {"source": c.source, "frame": c.frame, "timestamp": c.timestamp}
    if c.face is None:
        row.update({"face_id": None, "success": 0, "confidence": 0.0, "detected": 0,
                    "face_x": None, "face_y": None, "face_width": None, "face_height": None})  # fmt: skip
        return row
    x, y, w, h = c.face.box
    row.update({
        "face_id": c.face.face_id, "success": 1, "confidence": round(c.face.confidence, 4),
        "detected": int(c.face.detected), "face_x": round(x, 1), "face_y": round(y, 1),
        "face_width": round(w, 1), "face_height": round(h, 1),
    })  # fmt: skip
    return row


@dataclass
class _Tally:
    """Running counts for the collapse check (memory independent of the number of faces)."""

    n: int = 0
    counts: np.ndarray | None = None

    def add(self, hits: np.ndarray) -> None:
        s = hits.sum(axis=0).astype(np.int64)
        self.counts = s if self.counts is None else self.counts + s
        self.n += len(hits)


class RowMaker:
    """Turns a batch of crops and their logits into rows, and keeps the collapse tally."""

    def __init__(self, model: FaceModel, threshold: float) -> None:
        if not 0.0 < float(threshold) < 1.0:
            raise UserError(f"threshold must be in (0, 1), not {threshold!r}", argument="threshold")
        self.model, self.threshold = model, float(threshold)
        self.names = prediction_columns(model.task, model.class_names)
        self.tally = _Tally()

    def rows(self, crops: list[FaceCrop], logits: np.ndarray) -> Iterator[dict[str, Any]]:
        k = len(self.model.class_names)
        if not len(logits):  # a batch of frames without a face
            logits = np.zeros((0, k), np.float32)
        if logits.shape[1] != k:
            raise UserError(
                f"the model outputs {logits.shape[1]} values per face but its sidecar names {k} classes"
            )
        if self.model.task == "au":
            probs = _sigmoid(logits.astype(np.float64))
            hits = probs >= self.threshold
        else:
            probs = _softmax(logits.astype(np.float64))
            hits = np.eye(k, dtype=bool)[probs.argmax(axis=1)]  # (0, k) for a batch without a face
        self.tally.add(hits)
        i = 0
        for c in crops:
            row = _frame_part(c)
            if c.x is None:
                row.update(dict.fromkeys(self.names))
            else:
                row.update(self._values(probs[i], hits[i]))
                i += 1
            yield row

    def _values(self, p: np.ndarray, hit: np.ndarray) -> dict[str, Any]:
        if self.model.task == "au":
            k = len(p)
            out = {self.names[j]: int(hit[j]) for j in range(k)}
            out.update({self.names[k + j]: round(float(p[j]), 4) for j in range(k)})
            return out
        out = {self.names[j]: round(float(p[j]), 4) for j in range(len(p))}
        out["expression"] = self.model.class_names[int(p.argmax())]
        return out

    def signal(self) -> dict[str, Any]:
        """The learning checks' verdict on these predictions (no labels: collapse only)."""
        from automl.learning_checks import WEAK, Finding, summarize

        findings = []
        t = self.tally
        if t.counts is not None and t.n >= MIN_FACES_FOR_COLLAPSE:
            names = self.model.class_names
            if self.model.task == "fer":
                top = int(t.counts.argmax())
                share = t.counts[top] / t.n
                if share >= COLLAPSE_SHARE:
                    findings.append(Finding(
                        "predictions_one_class",
                        f"'{names[top]}' is the prediction for {share:.0%} of the {t.n} faces: the model "
                        "may have learned nothing, or the media show one expression",
                        severity=WEAK, values={"class": names[top], "share": share, "n": t.n},
                    ))  # fmt: skip
            else:
                constant = [names[j] for j in range(len(names)) if t.counts[j] in (0, t.n)]
                if len(constant) == len(names):
                    findings.append(Finding(
                        "predictions_constant",
                        f"every AU is predicted the same for all {t.n} faces: the model may have "
                        "learned nothing, or the media show one expression",
                        severity=WEAK, values={"constant": constant, "n": t.n},
                    ))  # fmt: skip
        return summarize(findings, ["predictions_collapse"], faces=t.n)


def training_signal(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The training run's learning-check verdict from an export's sidecar, when it is well formed
    (a hand-edited sidecar must not break a run): ``learned`` a bool, warnings that are objects."""
    sig = meta.get("signal")
    if not isinstance(sig, dict) or not isinstance(sig.get("learned"), bool):
        return None
    warnings = sig.get("warnings") if isinstance(sig.get("warnings"), list) else []
    return {**sig, "warnings": [w for w in warnings if isinstance(w, dict)]}


# ------------------------------------------------------------------------------- writing


def output_format(out: str | Path | None, fmt: str | None) -> str:
    """``fmt`` if given, else from the file name (``.jsonl`` / ``.json``: JSON Lines), else CSV."""
    if fmt is not None:
        fmt = fmt.strip().lower()
        if fmt not in FORMATS:
            raise UserError(
                f"output format must be one of {', '.join(FORMATS)}, not {fmt!r}", argument="format"
            )
        return fmt
    if out is not None and str(out) != "-" and Path(out).suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    return "csv"


class _Sink:
    """Rows to one open text stream as CSV or JSON Lines."""

    def __init__(self, fh: IO[str], fmt: str, columns: list[str]) -> None:
        self.fh, self.fmt, self.columns = fh, fmt, columns
        self.writer = csv.DictWriter(fh, columns, lineterminator="\n") if fmt == "csv" else None
        if self.writer is not None:
            self.writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.writerow({k: "" if v is None else v for k, v in row.items()})
        else:
            self.fh.write(json.dumps(row, allow_nan=False) + "\n")


class _Outputs:
    """Where rows go: one combined file (or stdout), or one file per input in ``out_dir``; every
    file is committed atomically when its rows are complete."""

    def __init__(self, stack: ExitStack, out: str | Path | None, out_dir: str | Path | None, fmt: str,
                 columns: list[str], stdout: IO[str] | None) -> None:  # fmt: skip
        from automl.atomic import check_writable

        self.stack, self.fmt, self.columns, self.out_dir = stack, fmt, columns, out_dir
        self.paths: list[Path] = []
        self._current: tuple[str, _Sink, ExitStack] | None = None
        self._names: set[str] = set()
        self.single: _Sink | None = None
        if out_dir is None:
            if out is None or str(out) == "-":
                self.single = _Sink(stdout or sys.stdout, fmt, columns)
            else:
                check_writable(out)
                self.single = _Sink(self._open(Path(out), stack), fmt, columns)
                self.paths.append(Path(out))

    @staticmethod
    def _open(path: Path, stack: ExitStack) -> IO[str]:
        from automl.atomic import atomic_write

        return stack.enter_context(atomic_write(path, "w"))

    def _file_for(self, source: str) -> Path:
        ext = ".csv" if self.fmt == "csv" else ".jsonl"
        stem = Path(source).stem or "input"
        name, k = stem + ext, 1
        while name in self._names:  # two inputs of one stem in different folders
            k += 1
            name = f"{stem}_{k}{ext}"
        self._names.add(name)
        return Path(self.out_dir) / name  # type: ignore[arg-type]

    def write(self, row: dict[str, Any]) -> None:
        if self.single is not None:
            self.single.write(row)
            return
        source = row["source"]
        if self._current is None or self._current[0] != source:
            self.finish_current()
            sub = ExitStack()
            path = self._file_for(source)
            self._current = (source, _Sink(self._open(path, sub), self.fmt, self.columns), sub)
            self.paths.append(path)
        self._current[1].write(row)

    def finish_current(self) -> None:
        if self._current is not None:
            self._current[2].close()  # commits that input's file
            self._current = None

    def abandon_current(self) -> None:
        """An interrupted input: its temporary file is removed, nothing replaces the target."""
        if self._current is not None:
            cur = self._current
            self._current = None
            self.paths.remove(self.paths[-1])
            cur[2].__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)


# ------------------------------------------------------------------------------- the job


@dataclass
class PredictResult:
    """What ``predict`` read and wrote, how fast, and whether the predictions carry signal."""

    model: dict[str, Any]
    outputs: list[str]
    rows: int
    stats: StreamStats
    wall_s: float
    signal: dict[str, Any]
    columns: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    model_signal: dict[str, Any] | None = None  # the training run's verdict, from the sidecar

    @property
    def frames_per_s(self) -> float:
        return self.stats.frames / self.wall_s if self.wall_s > 0 else math.nan

    def notes(self) -> list[str]:
        """One line per thing the user should know: skipped inputs, truncated videos, an option
        that does not apply."""
        out = [f"skipped {s}: {why}" for s, why in self.stats.skipped]
        if self.model.get("task") == "fer" and self.settings.get("threshold") != 0.5:
            out.append("the threshold applies to AU models; an expression model's class is its likeliest")
        out += [f"{s}: the video ended after {n} of the {m} frames its header gives (truncated or corrupt)"
                for s, n, m in self.stats.truncated]  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "outputs": self.outputs,
            "rows": self.rows,
            "wall_s": round(self.wall_s, 3),
            "frames_per_s": round(self.frames_per_s, 2) if self.stats.frames else None,
            "signal": self.signal,
            "model_signal": self.model_signal,
            "columns": self.columns,
            "settings": self.settings,
            **self.stats.to_dict(),
        }


def _progress(progress: ProgressCallback | None, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    from automl.progress import ProgressEvent

    done = 0
    start = time.perf_counter()

    def advance(n: int) -> None:
        nonlocal done
        done += n
        rate = done / max(time.perf_counter() - start, 1e-9)
        eta = (total - done) / rate if rate > 0 and total >= done else None
        progress(ProgressEvent("predict", done, total, f"{rate:.0f} frames/s", eta_s=eta))

    return advance


def predict_threads(n: int | None = None) -> int:
    """torch threads for ``predict`` on the CPU: ``n``, else one core fewer than the machine has
    (at least 1). The producer thread (decode, detection, crops) needs a core of its own: on 2
    cores the 24-px default network's pipeline on aligned crops ran at 1,906 faces/s with one
    torch thread and 1,144 with two (ratio to the raw forward 0.68 vs 0.33; BENCHMARKS.md,
    "predict")."""
    from automl.threads import check_threads

    n = check_threads(n)
    return n if n is not None else max(1, (os.cpu_count() or 1) - 1)


def predict(
    model: FaceModel | str | Path | int,
    inputs: Sequence[str | Path] | str | Path,
    *,
    out: str | Path | None = None,
    out_dir: str | Path | None = None,
    fmt: str | None = None,
    batch_size: int = 64,
    detect: bool = True,
    detect_every: int = 1,
    detect_side: int | None = 640,
    frame_step: int = 1,
    threshold: float = 0.5,
    device: str = "auto",
    cpu_threads: int | None = None,
    store: Store | str | None = None,
    progress: ProgressCallback | None = None,
    stdout: IO[str] | None = None,
) -> PredictResult:
    """Apply an exported model (a path, a train run id of ``store``, or a :class:`FaceModel`) to
    photos, folders and videos; rows go to ``out`` (a file; ``None`` or ``"-"``: ``stdout``) or
    one file per input in ``out_dir``, as CSV or JSON Lines (``fmt``, else from ``out``'s name).

    Every input is checked first (a corrupt video, one of zero frames, a frame over the pixel
    limit: :class:`~automl.media.MediaError`, and nothing is written). See the module docstring
    for the columns."""
    from automl.store.lifecycle import interrupt_on_signals
    from automl.threads import cpu_threads as torch_threads

    if out is not None and out_dir is not None:
        raise UserError("give out (one file) or out_dir (a file per input), not both", argument="out")
    paths = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    settings = StreamSettings(
        batch_size=batch_size, detect=detect, detect_every=detect_every, detect_side=detect_side,
        frame_step=frame_step,
    ).check()
    kind = output_format(out, fmt)
    media: list[MediaInput] = check_media(discover_media(paths))
    face_model = load_face_model(model, store=store, device=device)
    settings = dataclasses.replace(settings, face_crop=check_face_crop(face_model.meta.get("face_crop")))
    maker = RowMaker(face_model, threshold)
    columns = columns_for(face_model)
    stats = StreamStats()
    total = sum(-(-(m.frames or 1) // frame_step) for m in media)
    rows = 0
    start = time.perf_counter()
    threads = predict_threads(cpu_threads)
    # SIGTERM / SIGHUP: as Ctrl-C, outputs discarded; torch's thread count restored afterwards
    with interrupt_on_signals(), torch_threads(face_model.device, threads) as used, ExitStack() as stack:
        sinks = _Outputs(stack, out, out_dir, kind, columns, stdout)
        try:
            for crops, logits in face_batches(
                media, face_model.logits, image_size=face_model.image_size,
                channels=face_model.in_channels, settings=settings, stats=stats,
                progress=_progress(progress, total),
            ):  # fmt: skip
                for row in maker.rows(crops, logits):
                    sinks.write(row)
                    rows += 1
            if stats.frames == 0:  # every input was skipped: an error, not an empty result
                (source, why), more = stats.skipped[0], len(stats.skipped) - 1
                also = f" (and {more} more input(s))" if more else ""
                raise MediaError(f"nothing could be read: {source}: {why}{also}")
        except BaseException:
            sinks.abandon_current()
            raise
        sinks.finish_current()
    return PredictResult(
        model=face_model.describe(),
        outputs=[str(p) for p in sinks.paths] or ["-"],
        rows=rows,
        stats=stats,
        wall_s=time.perf_counter() - start,
        signal=maker.signal(),
        model_signal=training_signal(face_model.meta),
        columns=columns,
        settings={**settings.__dict__, "crop": "training framing (face_crop)" if settings.face_crop
                  else f"box + {settings.margin:.0%} margin", "threshold": threshold, "format": kind,
                  "cpu_threads": used},  # fmt: skip
    )


def read_rows(text: str) -> list[dict[str, str]]:
    """The rows of a CSV written by :func:`predict` (for tests and notebooks)."""
    return list(csv.DictReader(io.StringIO(text)))
