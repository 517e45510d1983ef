"""The benchmark behind ``automl bench predict``: the prediction pipeline against the raw forward
pass, and peak memory over video length.

Everything runs on synthetic media written here (nothing is downloaded):

* :func:`write_synthetic_video`: ``faces`` synthetic faces (:func:`automl.data.synthface.generate.
  synth_clips`, about a third of the frame height) drifting slowly over a textured background,
  MJPG in an ``.avi``; a pool of rendered clip frames (``pool_seconds``) is looped for the length
  asked, and frames are written one at a time, so writing a 10-minute video takes no more memory
  than a 10-second one. These full-face renders are found by OpenCV's Haar cascade in only part of
  the frames: the report gives the detection rate measured, not the number of faces drawn.
* :func:`write_aligned_video`: frames that are the face crops themselves (``--no-detect``).

The model is an export (``model``) or, by default, the face-space network of
:data:`BENCH_GENOTYPE`, untrained (seeded weights) and exported to TorchScript: its outputs mean
nothing, only its speed is measured.

Figures, for each device (the CPU, and CUDA when present):

* **raw forward**: :meth:`FaceModel.logits` on batches of ``batch`` crops that the pipeline made
  (:func:`automl.face_stream.face_batches` on the first frames), timed for ``raw_faces`` faces
  after warm-up, on as many torch threads as ``predict`` gives the model
  (:func:`automl.prediction.predict_threads`): faces/s;
* **pipeline**: :func:`automl.prediction.predict` on the ``seconds`` video, writing a CSV, for each
  mode of :data:`MODES` (detection every frame, every 5th frame, on frames shrunk to 320 px, no
  detection on the aligned video): faces/s, frames/s, ``ratio`` = pipeline faces/s / raw forward
  faces/s (same model, machine, batch), the detection rate and each stage's share of the stream's
  stage seconds (``StreamStats.seconds``; the producer's stages overlap the forward pass, so the
  shares are of their sum, not of the wall time);
* **stage costs**: each stage alone on the same frames (decode, Haar detection, crop, forward of one
  batch, rows written as CSV), per frame or per face, to say where the pipeline's time goes;
* **peak RSS**: ``predict`` on the ``seconds`` and the ``long_seconds`` video, each in a fresh
  Python process (``ru_maxrss`` at its end), and their ratio.

Raw forward and the modes are interleaved ``repeats`` times and the best of each is kept (the
machine is shared): the ratios are the headline, not absolute times.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import UserError

# create_space("face").genotype_from_choice([0] * len(decisions)): the face space's first path.
BENCH_GENOTYPE: dict[str, Any] = {
    "space": "face",
    "depths": [1, 1, 2],
    "ops": ["mb_k3_e3", "mb_k3_e3", "mb_k3_e3", "mb_k3_e3"],
    "task": "fer",
    "head": "linear",
}
PIPELINE_TARGET = 0.7  # pipeline faces/s at least this share of the raw forward's
RSS_TARGET = 1.2  # peak RSS of the long video at most this multiple of the short one's
RSS_BUDGET_S = 180.0  # the long RSS run should take about this long at most (chooses detect_every)


@dataclass(frozen=True)
class Mode:
    """One way of running ``predict``: on the video with faces, or on the aligned-crop video."""

    key: str
    label: str
    detect: bool = True
    detect_every: int = 1
    detect_side: int | None = 640


MODES: tuple[Mode, ...] = (
    Mode("every1", "detect every frame"),
    Mode("every5", "detect every 5th frame", detect_every=5),
    Mode("side320", "detect every frame, side 320", detect_side=320),
    Mode("nodetect", "--no-detect (aligned crops)", detect=False),
)
MODE_KEYS = tuple(m.key for m in MODES)
Progress = Callable[[str], None]


def _say(progress: Progress | None, text: str) -> None:
    if progress is not None:
        progress(text)


# ------------------------------------------------------------------------------- media


def _cv2() -> Any:
    from automl.media import _cv2 as media_cv2

    return media_cv2()


def _face_pool(n_frames: int, side: int, slots: int, seed: int, clip_frames: int = 25) -> np.ndarray:
    """BGR uint8 ``(slots, n_frames, side, side, 3)``: ``slots`` streams of synthetic clip frames
    (one identity and expression per clip of ``clip_frames``), rendered at most at 128 px and
    resized to ``side``."""
    from automl.data.synthface.generate import synth_clips

    cv2 = _cv2()
    clips = -(-n_frames // clip_frames)
    render = min(side, 128)
    imgs = synth_clips(slots * clips, clip_frames, size=render, channels=3, seed=seed).images
    imgs = imgs[:, ::-1].transpose(0, 2, 3, 1)  # RGB (N, C, H, W) -> BGR (N, H, W, C)
    pool = np.empty((slots, n_frames, side, side, 3), np.uint8)
    for k in range(slots):
        for i in range(n_frames):
            face = np.ascontiguousarray(imgs[k * clips * clip_frames + i])
            pool[k, i] = (
                face if render == side else cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
            )
    return pool


def _background(width: int, height: int, seed: int) -> np.ndarray:
    """A fixed BGR backdrop: a soft colour gradient with low-frequency blotches."""
    cv2 = _cv2()
    rng = np.random.default_rng(seed + 7)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([70 + 50 * xx / width, 90 + 40 * yy / height, 110 - 30 * xx / width], axis=-1)
    blotch = cv2.resize(
        rng.normal(0, 18, (9, 16, 3)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC
    )
    return np.clip(base + blotch, 0, 255).astype(np.uint8)


def _writer(path: Path, fps: float, size: tuple[int, int]) -> Any:
    cv2 = _cv2()
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), size)
    if not writer.isOpened():
        raise UserError(f"OpenCV cannot write an MJPG video to {path}")
    return writer


def _check_video_args(seconds: float, fps: float, size: tuple[int, int]) -> int:
    if not seconds > 0 or not fps > 0:
        raise UserError(f"a video needs seconds > 0 and fps > 0, not {seconds!r} s at {fps!r} fps")
    if min(size) < 64:
        raise UserError(f"video frames must be at least 64x64 pixels, not {size[0]}x{size[1]}")
    return max(1, round(seconds * fps))


def _written(
    path: Path, n: int, fps: float, size: tuple[int, int], faces: int, side: int, pool_n: int
) -> dict[str, Any]:
    """What a synthetic video writer wrote (the report's ``videos`` entries)."""
    return {
        "path": str(path),
        "seconds": n / fps,
        "frames": n,
        "fps": fps,
        "size": list(size),
        "faces_drawn": faces,
        "face_side": side,
        "pool_frames": pool_n,
        "bytes": path.stat().st_size,
    }


def write_synthetic_video(
    path: str | Path,
    seconds: float,
    fps: float = 25,
    size: tuple[int, int] = (640, 360),
    faces: int = 2,
    seed: int = 0,
    *,
    pool_seconds: float = 10.0,
    face_side: int | None = None,
) -> dict[str, Any]:
    """Write ``seconds`` of ``size`` (width, height) video with ``faces`` drifting synthetic faces
    (side ``face_side``, default a third of the height) as MJPG; returns what was written.

    A pool of ``pool_seconds`` of rendered frames per face is looped; frames are composed and
    written one at a time (memory independent of ``seconds``)."""
    path = Path(path)
    n = _check_video_args(seconds, fps, size)
    if faces < 1:
        raise UserError(f"a video with faces needs faces >= 1, not {faces}")
    width, height = size
    side = int(face_side or round(height / 3))
    pool_n = max(1, min(n, round(pool_seconds * fps)))
    pool = _face_pool(pool_n, side, faces, seed)
    back = _background(width, height, seed)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, (faces, 2))
    period = rng.uniform(6.0, 12.0, (faces, 2))  # seconds per drift cycle: slow
    amp = np.array([0.06 * width, 0.08 * height])
    centres = [((k + 1) * width / (faces + 1), height / 2) for k in range(faces)]
    writer = _writer(path, fps, (width, height))
    try:
        for i in range(n):
            t = i / fps
            frame = back.copy()
            for k in range(faces):
                dx, dy = amp * np.sin(2 * np.pi * t / period[k] + phase[k])
                x = int(np.clip(centres[k][0] + dx - side / 2, 0, width - side))
                y = int(np.clip(centres[k][1] + dy - side / 2, 0, height - side))
                frame[y : y + side, x : x + side] = pool[k, (i + 37 * k) % pool_n]
            writer.write(frame)
    finally:
        writer.release()
    return _written(path, n, fps, (width, height), faces, side, pool_n)


def write_aligned_video(
    path: str | Path,
    seconds: float,
    fps: float = 25,
    side: int = 112,
    seed: int = 0,
    *,
    pool_seconds: float = 10.0,
) -> dict[str, Any]:
    """Write ``seconds`` of video whose frames are synthetic face crops (``side`` x ``side``), the
    input of ``predict --no-detect``; returns what was written."""
    path = Path(path)
    n = _check_video_args(seconds, fps, (side, side))
    pool_n = max(1, min(n, round(pool_seconds * fps)))
    pool = _face_pool(pool_n, side, 1, seed + 1)[0]
    writer = _writer(path, fps, (side, side))
    try:
        for i in range(n):
            writer.write(pool[i % pool_n])
    finally:
        writer.release()
    return _written(path, n, fps, (side, side), 1, side, pool_n)


# ------------------------------------------------------------------------------- model


def default_model(out_dir: str | Path, image_size: int = 24, channels: int = 1, seed: int = 0) -> Path:
    """The face-space network of :data:`BENCH_GENOTYPE` (the training defaults' width), untrained
    with seeded weights, exported to TorchScript as ``out_dir/model.pt``: for speed only."""
    import torch

    from automl.config import TrainSection
    from automl.data.synthface.facs import FER7
    from automl.exporting import export_torchscript
    from automl.training import build_network, network_options

    if image_size < 8 or channels not in (1, 3):
        raise UserError(
            f"the bench model needs image_size >= 8 and 1 or 3 channels, not {image_size}, {channels}"
        )
    options = network_options(TrainSection())
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model, _ = build_network(
            BENCH_GENOTYPE,
            in_channels=channels,
            num_outputs=len(FER7),
            image_size=image_size,
            options=options,
        )
    meta = {
        "in_channels": channels,
        "image_size": image_size,
        "num_outputs": len(FER7),
        "task": "fer",
        "class_names": list(FER7),
        "genotype": BENCH_GENOTYPE,
        "space": "face",
        "network_options": options,
        "params": int(sum(p.numel() for p in model.parameters())),
        "signal": None,
        "metrics": {"note": "untrained: bench predict measures speed only"},
    }
    out = Path(out_dir) / "model.pt"
    export_torchscript(model.eval(), meta, out)
    return out


# ------------------------------------------------------------------------------- measurements


def _media(path: str | Path) -> list[Any]:
    from automl.media import check_media, discover_media

    return check_media(discover_media([path]))


def pipeline_crops(
    video: str | Path,
    image_size: int,
    channels: int,
    *,
    faces: int = 256,
    detect: bool = True,
    detect_every: int = 5,
    detect_side: int | None = 640,
    batch: int = 64,
) -> np.ndarray:
    """float32 ``(N, C, S, S)``: the first ``faces`` crops (fewer if the video has fewer) that
    :func:`automl.face_stream.face_batches` makes of ``video``, exactly what ``predict`` feeds
    the model."""
    from automl.face_stream import StreamSettings, face_batches

    got: list[np.ndarray] = []
    n = 0

    def keep(x: np.ndarray) -> np.ndarray:
        got.append(x.copy())
        return np.zeros((len(x), 1), np.float32)

    settings = StreamSettings(
        batch_size=min(batch, faces), detect=detect, detect_every=detect_every, detect_side=detect_side
    )
    stream = face_batches(_media(video), keep, image_size=image_size, channels=channels, settings=settings)
    try:
        for crops, _ in stream:
            n += sum(c.x is not None for c in crops)
            if n >= faces:
                break
    finally:
        stream.close()
    if not got:
        return np.zeros((0, channels, image_size, image_size), np.float32)
    return np.concatenate(got)[:faces]


def _batches(crops: np.ndarray, batch: int, faces: int) -> list[np.ndarray]:
    """``faces`` crops (the sample tiled) in contiguous batches of ``batch``."""
    idx = np.arange(faces) % len(crops)
    return [np.ascontiguousarray(crops[idx[i : i + batch]]) for i in range(0, faces, batch)]


def raw_forward(
    model: Any, crops: np.ndarray, batch: int = 64, faces: int = 4096, warmup: int = 3
) -> dict[str, Any]:
    """Faces/s of ``model.logits`` alone on ``faces`` crops (the sample tiled) in batches of
    ``batch``, after ``warmup`` batches; inputs are stacked beforehand. ``faces_per_s`` is all
    the faces over all the time (the ratio's denominator); ``faces_per_s_median_batch``, from the
    median batch, shows how much other work on a shared machine slowed the run."""
    if len(crops) == 0:
        raise UserError("no face crops to time the forward pass on (no face was detected)")
    batches = _batches(crops, batch, max(faces, batch))
    for b in batches[: max(1, warmup)]:
        model.logits(b)
    _sync(model)
    times = []
    start, cpu = time.perf_counter(), time.process_time()
    for b in batches:
        before = time.perf_counter()
        model.logits(b)
        _sync(model)
        times.append(time.perf_counter() - before)
    wall = time.perf_counter() - start
    total = sum(len(b) for b in batches)
    median = float(np.median(times))
    return {
        "faces": total,
        "seconds": round(wall, 4),
        "cpu_seconds": round(time.process_time() - cpu, 4),
        "faces_per_s": total / wall if wall > 0 else math.nan,
        "faces_per_s_median_batch": batch / median if median > 0 else math.nan,
    }


def _sync(model: Any) -> None:
    if str(getattr(model, "device", "cpu")).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run_pipeline(
    model: Any,
    video: str | Path,
    mode: Mode,
    *,
    batch: int = 64,
    device: str = "cpu",
    cpu_threads: int | None = None,
    work: str | Path | None = None,
) -> dict[str, Any]:
    """``predict`` of ``video`` in ``mode`` to a CSV in a temporary folder: rates, detection rate
    and the stage seconds."""
    from automl.prediction import predict

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        cpu = time.process_time()
        res = predict(
            model,
            video,
            out=Path(tmp) / "predictions.csv",
            batch_size=batch,
            detect=mode.detect,
            detect_every=mode.detect_every,
            detect_side=mode.detect_side,
            device=device,
            cpu_threads=cpu_threads,
        )
        cpu = time.process_time() - cpu
        csv_bytes = (Path(tmp) / "predictions.csv").stat().st_size
    s = res.stats
    wall = res.wall_s
    total = sum(s.seconds.values())
    return {
        "torch_threads": res.settings.get("cpu_threads"),
        "frames": s.frames,
        "faces": s.faces,
        "empty_frames": s.empty_frames,
        "detections": s.detections,
        "rows": res.rows,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "csv_bytes": csv_bytes,
        "frames_per_s": s.frames / wall if wall > 0 else math.nan,
        "faces_per_s": s.faces / wall if wall > 0 else math.nan,
        "frames_with_face": (s.frames - s.empty_frames) / s.frames if s.frames else math.nan,
        "seconds": {k: round(v, 4) for k, v in s.seconds.items()},
        "shares": {k: (v / total if total > 0 else math.nan) for k, v in s.seconds.items()},
    }


def stage_costs(
    model: Any,
    video: str | Path,
    aligned: str | Path,
    *,
    batch: int = 64,
    frames: int = 100,
    detect_side: int | None = 640,
) -> dict[str, Any]:
    """Each stage alone, in milliseconds: decoding a frame (both videos), Haar detection of a frame
    (at ``detect_side`` and at 320), cropping one face, the forward pass per face (the median of
    4 batches), and writing one row (:class:`automl.prediction.RowMaker` + the CSV writer)."""
    from automl.face_stream import FaceCrop, crop_face
    from automl.face_tracking import TrackedFace
    from automl.media import iter_frames
    from automl.prediction import RowMaker, _Sink, columns_for
    from hashing.stream import FaceDetector

    def decode(path: str | Path) -> tuple[list[np.ndarray], float]:
        item = _media(path)[0]
        it = iter_frames(item)
        out: list[np.ndarray] = []
        start = time.perf_counter()
        for fr in it:
            out.append(fr.bgr)
            if len(out) >= frames:
                break
        ms = (time.perf_counter() - start) * 1000 / max(1, len(out))
        it.close()
        return out, ms

    bgr, decode_ms = decode(video)
    small, decode_aligned_ms = decode(aligned)
    det = FaceDetector()
    timings: dict[str, float] = {"decode_frame_ms": decode_ms, "decode_aligned_frame_ms": decode_aligned_ms}
    found: dict[str, int] = {}
    boxes: list[tuple[np.ndarray, tuple[float, ...]]] = []
    for label, side in (("detect_frame_ms", detect_side), ("detect_frame_side320_ms", 320)):
        start, hits = time.perf_counter(), 0
        for f in bgr:
            b, _ = det.scored_boxes(f, side)
            hits += len(b) > 0
            if label == "detect_frame_ms":
                boxes.extend((f, tuple(float(v) for v in box)) for box in b)
        timings[label] = (time.perf_counter() - start) * 1000 / max(1, len(bgr))
        found[label.replace("_ms", "_frames_with_face")] = hits
    size, ch = model.image_size, model.in_channels
    pairs = boxes or [(f, None) for f in small]
    start = time.perf_counter()
    xs = [crop_face(f, box, size, ch) for f, box in pairs]  # type: ignore[arg-type]
    timings["crop_face_ms"] = (time.perf_counter() - start) * 1000 / max(1, len(xs))
    xb = _batches(np.stack(xs), batch, 4 * batch)
    model.logits(xb[0])  # warm-up
    logits, times = [], []
    for b in xb:
        start = time.perf_counter()
        logits.append(model.logits(b))
        _sync(model)
        times.append(time.perf_counter() - start)
    timings["forward_face_ms"] = float(np.median(times)) * 1000 / batch  # median batch: robust to load
    maker = RowMaker(model, 0.5)
    sink = _Sink(io.StringIO(), "csv", columns_for(model))
    crops = [
        FaceCrop("video.avi", i + 1, i / 25, TrackedFace(0, (10.0, 20.0, 120.0, 120.0), 0.9), xb[0][0])
        for i in range(batch)
    ]
    start = time.perf_counter()
    for lg in logits:
        for row in maker.rows(crops, lg):
            sink.write(row)
    timings["write_row_ms"] = (time.perf_counter() - start) * 1000 / (len(logits) * batch)
    return {
        "frames": len(bgr),
        "faces_cropped": len(xs),
        **found,
        **{k: round(v, 4) for k, v in timings.items()},
    }


RSS_SCRIPT = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
a = json.loads(sys.argv[1])


def status():
    # VmHWM: this process's own peak; ru_maxrss also carries the parent's size over fork + exec
    out = {"ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    try:
        for line in open("/proc/self/status"):
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0].lower() + "_kib"] = int(line.split()[1])
    except OSError:
        pass
    return out


from automl.face_model import load_face_model
from automl.prediction import predict
model = load_face_model(a["model"], device=a["device"])
loaded = status()
start = time.perf_counter()
with tempfile.TemporaryDirectory(dir=a["work"]) as tmp:
    res = predict(model, a["video"], out=Path(tmp) / "p.csv", batch_size=a["batch"], detect=a["detect"],
                  detect_every=a["detect_every"], detect_side=a["detect_side"], device=a["device"],
                  cpu_threads=a["cpu_threads"])
wall = time.perf_counter() - start
print(json.dumps({"after_load": loaded, "end": status(), "frames": res.stats.frames,
                  "faces": res.stats.faces, "wall_s": wall}))
"""


def peak_rss(
    model_path: str | Path,
    video: str | Path,
    mode: Mode,
    *,
    batch: int = 64,
    device: str = "cpu",
    cpu_threads: int | None = None,
    work: str | Path | None = None,
    timeout: float | None = 3600,
) -> dict[str, Any]:
    """``predict`` of ``video`` in a fresh Python process: its memory after loading the model and at
    the end (``ru_maxrss``, and where ``/proc`` has them ``VmHWM`` / ``VmRSS``, KiB), frames, faces,
    wall seconds, and ``peak_kib``: VmHWM at the end, else ru_maxrss.

    VmHWM is the figure: on Linux a child's ``ru_maxrss`` starts from its parent's resident size
    (the forked copy's high-water mark is carried over ``exec``), so a large parent (this bench
    holds torch and the rendered faces) would set the child's ``ru_maxrss`` for any short run."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    args = {
        "model": str(model_path),
        "video": str(video),
        "batch": batch,
        "detect": mode.detect,
        "detect_every": mode.detect_every,
        "detect_side": mode.detect_side,
        "device": device,
        "cpu_threads": cpu_threads,
        "work": None if work is None else str(work),
    }
    proc = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"the RSS run of {Path(video).name} failed (exit {proc.returncode}): {tail}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    end, load = got["end"], got["after_load"]
    got["peak_kib"] = end.get("vmhwm_kib", end["ru_maxrss_kib"])
    got["peak_after_load_kib"] = load.get("vmhwm_kib", load["ru_maxrss_kib"])
    got["peak_source"] = "VmHWM" if "vmhwm_kib" in end else "ru_maxrss"
    return got


def choose_rss_detect_every(
    fixed_s: float, detect_s: float, frames: int, budget_s: float = RSS_BUDGET_S
) -> tuple[int, float]:
    """The smallest ``detect_every`` of 1, 5, 10, 25, 50 whose estimated time for ``frames``
    frames fits ``budget_s`` (a frame costs ``fixed_s + detect_s / detect_every``: decoding,
    cropping, forward and writing, plus its share of one detection), and that estimate in seconds."""
    est = 0.0
    for n in (1, 5, 10, 25, 50):
        est = frames * (fixed_s + detect_s / n)
        if est <= budget_s:
            return n, est
    return 50, est


def frame_costs(report: dict[str, Any], device: str = "cpu") -> tuple[float, float] | None:
    """``(fixed_s, detect_s)`` per frame for :func:`choose_rss_detect_every`: from the stages
    timed alone (serial sums, so an upper bound for the overlapped pipeline) with the faces per
    frame the pipeline found, else from the pipeline's frames/s at every frame and every 5th,
    else None."""
    pipe = {r["mode"]: r for r in report["pipeline"] if r["device"] == device}
    stages = [st for st in report.get("stages") or [] if st["device"] == device]
    found = next((pipe[k] for k in ("every1", "every5") if k in pipe), None)
    if stages:
        st = stages[0]
        per_frame = found["faces"] / found["frames"] if found and found["frames"] else 1.0
        fixed = st["decode_frame_ms"] + per_frame * (
            st["crop_face_ms"] + st["forward_face_ms"] + st["write_row_ms"]
        )
        return fixed / 1000, st["detect_frame_ms"] / 1000
    if "every1" in pipe and "every5" in pipe:
        t1, t5 = 1.0 / pipe["every1"]["frames_per_s"], 1.0 / pipe["every5"]["frames_per_s"]
        detect = max(0.0, (t1 - t5) * 5.0 / 4.0)
        return max(1e-6, t1 - detect), detect
    return None


# ------------------------------------------------------------------------------- the bench


def machine() -> dict[str, Any]:
    """Cores, CPU model, platform, library versions, the load average."""
    import cv2
    import torch

    from automl.machine import cpu_facts

    return {
        **cpu_facts(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def devices() -> list[str]:
    """``cpu``, and ``cuda`` when torch sees a GPU."""
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _best(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return max(runs, key=lambda r: r[key] if math.isfinite(r[key]) else -1.0)


def _modes(keys: Sequence[str] | None) -> list[Mode]:
    keys = list(keys or MODE_KEYS)
    bad = [k for k in keys if k not in MODE_KEYS]
    if bad or not keys:
        raise UserError(
            f"modes must be some of {', '.join(MODE_KEYS)}, not {', '.join(bad) or 'none'}", argument="modes"
        )
    return [m for m in MODES if m.key in keys]


@contextlib.contextmanager
def _work_dir(work: str | Path | None) -> Iterator[Path]:
    if work is not None:
        Path(work).mkdir(parents=True, exist_ok=True)
        yield Path(work)
        return
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        yield Path(tmp)


def predict_bench(
    *,
    model: str | Path | None = None,
    seconds: float = 60,
    long_seconds: float = 600,
    image_size: int = 24,
    channels: int = 1,
    batch: int = 64,
    faces: int = 2,
    size: tuple[int, int] = (640, 360),
    fps: float = 25,
    aligned_side: int = 112,
    repeats: int = 2,
    raw_faces: int = 4096,
    modes: Sequence[str] | None = None,
    rss: bool = True,
    rss_detect_every: int | None = None,
    cpu_threads: int | None = None,
    stages: bool = True,
    seed: int = 0,
    work_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring) and return its JSON-able report.

    ``model``: an export (its sidecar gives the crop size and channels), else the default network
    at ``image_size`` / ``channels``. ``rss_detect_every``: detection interval of the RSS runs
    (None: the smallest of 1, 5, 10, 25, 50 whose estimated long run fits ~3 minutes, from the
    CPU stage costs: :func:`frame_costs`). ``work_dir``: where videos and the model go (default: a
    temporary folder, removed at the end)."""
    from automl.face_model import load_face_model
    from automl.prediction import predict_threads
    from automl.process_state import preserved_process_state
    from automl.threads import cpu_threads as torch_threads

    if repeats < 1 or batch < 1 or raw_faces < 1:
        raise UserError("repeats, batch and raw_faces must be at least 1")
    if rss and long_seconds <= 0:
        raise UserError("long_seconds must be > 0 (or skip the RSS runs)")
    chosen = _modes(modes)
    t0 = time.perf_counter()
    report: dict[str, Any] = {"benchmark": "predict", "synthetic": True, "machine": machine()}
    with _work_dir(work_dir) as work, preserved_process_state():
        _say(progress, f"writing the {seconds:g} s videos")
        video = write_synthetic_video(work / "faces.avi", seconds, fps, size, faces, seed)
        aligned = write_aligned_video(work / "aligned.avi", seconds, fps, aligned_side, seed)
        report["videos"] = {"faces": video, "aligned": aligned}
        if model is None:
            _say(progress, f"exporting the untrained face-space network at {image_size} px, {channels} ch")
            model_path = default_model(work, image_size, channels, seed)
            untrained = True
        else:
            model_path, untrained = Path(model), False
        report["untrained"] = untrained
        report["settings"] = {
            "seconds": seconds,
            "long_seconds": long_seconds if rss else None,
            "batch": batch,
            "repeats": repeats,
            "raw_faces": raw_faces,
            "cpu_threads": cpu_threads,
            "modes": [m.key for m in chosen],
            "seed": seed,
        }
        raw_rows: list[dict[str, Any]] = []
        pipe_rows: list[dict[str, Any]] = []
        stage_rows: list[dict[str, Any]] = []
        for device in devices():
            fm = load_face_model(model_path, device=device)
            # the raw forward runs on as many torch threads as predict gives the model
            threads = predict_threads(cpu_threads) if device == "cpu" else None
            if device == "cpu":
                report["model"] = {
                    **fm.describe(),
                    "untrained": untrained,
                    "genotype": fm.meta.get("genotype"),
                    "params": fm.meta.get("params"),
                }
            _say(progress, f"{device}: taking the pipeline's crops for the raw forward pass")
            crops = pipeline_crops(video["path"], fm.image_size, fm.in_channels, batch=batch)
            if len(crops) == 0:
                crops = pipeline_crops(
                    aligned["path"], fm.image_size, fm.in_channels, detect=False, batch=batch
                )
            # predict's summary imports the learning checks (and scipy.stats, ~0.7 s) once per process:
            # imported here, so that the first timed mode does not pay it
            import automl.learning_checks  # noqa: F401

            raws: list[dict[str, Any]] = []
            runs: dict[str, list[dict[str, Any]]] = {m.key: [] for m in chosen}
            for rep in range(repeats):
                _say(progress, f"{device}, round {rep + 1}/{repeats}: raw forward of {raw_faces} faces")
                with torch_threads(device, threads):
                    raws.append(raw_forward(fm, crops, batch, raw_faces))
                for m in chosen:
                    _say(progress, f"{device}, round {rep + 1}/{repeats}: predict, {m.label}")
                    src = aligned["path"] if not m.detect else video["path"]
                    runs[m.key].append(
                        run_pipeline(
                            fm, src, m, batch=batch, device=device, cpu_threads=cpu_threads, work=work
                        )
                    )
            raw = _best(raws, "faces_per_s")
            raw_rows.append(
                {
                    "device": device,
                    "batch": batch,
                    "crops_sampled": len(crops),
                    "torch_threads": threads,
                    **raw,
                    "runs": [r["faces_per_s"] for r in raws],
                }
            )
            for m in chosen:
                best = _best(runs[m.key], "faces_per_s")
                drawn = (video if m.detect else aligned)["faces_drawn"]
                pipe_rows.append(
                    {
                        "device": device,
                        "mode": m.key,
                        "label": m.label,
                        "detect": m.detect,
                        "detect_every": m.detect_every,
                        "detect_side": m.detect_side,
                        **best,
                        "faces_found_share": best["faces"] / (drawn * best["frames"])
                        if best["frames"]
                        else math.nan,
                        "ratio": best["faces_per_s"] / raw["faces_per_s"],
                        "runs": [r["faces_per_s"] for r in runs[m.key]],
                        "ratios": [
                            r["faces_per_s"] / x["faces_per_s"]
                            for r, x in zip(runs[m.key], raws, strict=True)
                        ],
                    }
                )
            if stages:
                _say(progress, f"{device}: each stage alone")
                with torch_threads(device, threads):
                    costs = stage_costs(fm, video["path"], aligned["path"], batch=batch)
                stage_rows.append({"device": device, "torch_threads": threads, **costs})
        report["raw_forward"] = raw_rows
        report["pipeline"] = pipe_rows
        report["stages"] = stage_rows
        report["rss"] = None
        if rss:
            report["rss"] = _rss(
                report,
                model_path,
                video,
                seconds,
                long_seconds,
                fps,
                size,
                faces,
                seed,
                batch,
                cpu_threads,
                rss_detect_every,
                work,
                progress,
            )
    report["targets"] = targets(report)
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return report


def _rss(
    report: dict[str, Any],
    model_path: Path,
    video: dict[str, Any],
    seconds: float,
    long_seconds: float,
    fps: float,
    size: tuple[int, int],
    faces: int,
    seed: int,
    batch: int,
    cpu_threads: int | None,
    every: int | None,
    work: Path,
    progress: Progress | None,
) -> dict[str, Any]:
    estimate = None
    costs = frame_costs(report)
    if every is None:
        if costs is not None:
            every, estimate = choose_rss_detect_every(*costs, round(long_seconds * fps))
        else:
            every = 5
    mode = Mode(f"every{every}", f"detect every {every} frame(s)", detect_every=every)
    _say(progress, f"writing the {long_seconds:g} s video")
    long_video = write_synthetic_video(work / "faces_long.avi", long_seconds, fps, size, faces, seed)
    runs = []
    for info in (video, long_video):
        _say(
            progress,
            f"peak RSS: predict of the {info['seconds']:g} s video in a fresh process (detect every {every})",
        )
        got = peak_rss(model_path, info["path"], mode, batch=batch, cpu_threads=cpu_threads, work=work)
        runs.append(
            {
                "video_seconds": info["seconds"],
                "video_frames": info["frames"],
                "video_bytes": info["bytes"],
                **got,
            }
        )
    ratio = runs[1]["peak_kib"] / runs[0]["peak_kib"]
    with contextlib.suppress(OSError):
        Path(long_video["path"]).unlink()
    return {
        "device": "cpu",
        "detect_every": every,
        "detect_side": 640,
        "estimated_long_s": estimate,
        "runs": runs,
        "ratio": ratio,
        "peak_source": runs[0]["peak_source"],
        "ru_maxrss_ratio": runs[1]["end"]["ru_maxrss_kib"] / runs[0]["end"]["ru_maxrss_kib"],
    }


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """Pipeline ratio >= :data:`PIPELINE_TARGET` (the modes that meet it) and RSS ratio <=
    :data:`RSS_TARGET`."""
    met = [f"{r['device']}: {r['label']}" for r in report["pipeline"] if r["ratio"] >= PIPELINE_TARGET]
    missed = [f"{r['device']}: {r['label']}" for r in report["pipeline"] if r["ratio"] < PIPELINE_TARGET]
    out: dict[str, Any] = {
        "pipeline_ratio": {"target": PIPELINE_TARGET, "met_by": met, "not_met_by": missed, "met": not missed},
        "rss_ratio": None,
    }
    if report.get("rss"):
        out["rss_ratio"] = {
            "target": RSS_TARGET,
            "ratio": report["rss"]["ratio"],
            "met": report["rss"]["ratio"] <= RSS_TARGET,
        }
    return out


# ------------------------------------------------------------------------------- tables


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if math.isfinite(x) else "-"


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def pipeline_table(report: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """``(title, columns, rows)``: the raw forward and every mode, by device; ``stages`` is the
    decode / detect / crop / forward share of the stream's stage seconds, in percent."""
    m = report["model"]
    kind = "untrained face-space net" if report["untrained"] else Path(m["path"]).name
    title = (
        f"predict vs raw forward: {kind}, {m['image_size']} px, {m['in_channels']} ch, batch "
        f"{report['settings']['batch']}, {report['videos']['faces']['seconds']:g} s video "
        f"(best of {report['settings']['repeats']})"
    )
    threads = next((r.get("torch_threads") for r in report["raw_forward"] if r["device"] == "cpu"), None)
    if threads:
        title += f", {threads} torch thread{'s' if threads > 1 else ''} on CPU"
    cols = ["device", "what", "frames/s", "faces/s", "ratio", "w/ face", "found", "stages % dec/det/crop/fwd"]
    rows: list[list[str]] = []
    for raw in report["raw_forward"]:
        rows.append(
            [
                raw["device"],
                f"raw forward, {raw['faces']} faces",
                "-",
                _rate(raw["faces_per_s"]),
                "1.000",
                "-",
                "-",
                "0/0/0/100",
            ]
        )
        for r in report["pipeline"]:
            if r["device"] != raw["device"]:
                continue
            sh = "/".join(
                f"{100 * r['shares'][k]:.0f}" if math.isfinite(r["shares"][k]) else "-"
                for k in ("decode", "detect", "crop", "forward")
            )
            rows.append(
                [
                    r["device"],
                    r["label"],
                    _rate(r["frames_per_s"]),
                    _rate(r["faces_per_s"]),
                    f"{r['ratio']:.3f}",
                    _pct(r["frames_with_face"]),
                    _pct(r["faces_found_share"]),
                    sh,
                ]
            )
        rows.append([])
    return title, cols, rows[:-1]


def stage_table(report: dict[str, Any]) -> tuple[str, list[str], list[list[str]]] | None:
    """``(title, columns, rows)``: each stage alone, milliseconds per frame or face."""
    if not report.get("stages"):
        return None
    cols = ["device", "stage", "ms", "per", "per second"]
    rows: list[list[str]] = []
    names = [
        ("decode_frame_ms", "decode (video with faces)", "frame"),
        ("decode_aligned_frame_ms", "decode (aligned video)", "frame"),
        ("detect_frame_ms", "Haar detection, side 640", "frame"),
        ("detect_frame_side320_ms", "Haar detection, side 320", "frame"),
        ("crop_face_ms", "crop + resize", "face"),
        ("forward_face_ms", "forward (batched)", "face"),
        ("write_row_ms", "row values + CSV", "face"),
    ]
    for st in report["stages"]:
        for key, label, per in names:
            ms = st[key]
            rows.append([st["device"], label, f"{ms:.3f}", per, _rate(1000 / ms) if ms > 0 else "-"])
        rows.append([])
    return f"each stage alone (first {report['stages'][0]['frames']} frames)", cols, rows[:-1]


def rss_table(report: dict[str, Any]) -> tuple[str, list[str], list[list[str]]] | None:
    """``(title, columns, rows)``: memory of the short and the long video's runs, MiB (None
    without RSS runs)."""
    rss = report.get("rss")
    if not rss:
        return None

    def mib(d: dict[str, Any], key: str) -> str:
        return f"{d[key] / 1024:.0f}" if key in d else "-"

    cols = ["video", "frames", "faces", "wall s", "RSS after load", "RSS at end", "peak (VmHWM)", "ru_maxrss"]
    rows = [
        [
            f"{r['video_seconds']:g} s",
            str(r["video_frames"]),
            str(r["faces"]),
            f"{r['wall_s']:.0f}",
            mib(r["after_load"], "vmrss_kib"),
            mib(r["end"], "vmrss_kib"),
            mib(r["end"], "vmhwm_kib"),
            mib(r["end"], "ru_maxrss_kib"),
        ]
        for r in rss["runs"]
    ]
    title = (
        f"memory (MiB), each run in a fresh process (cpu, detect every {rss['detect_every']}, side "
        f"{rss['detect_side']}): peak ratio {rss['ratio']:.3f}"
    )
    return title, cols, rows


def target_lines(report: dict[str, Any]) -> list[str]:
    """The targets as text lines, and what the model is."""
    t = report["targets"]
    p = t["pipeline_ratio"]
    lines = []
    if report["untrained"]:
        lines.append("model: untrained (seeded) network; its predictions mean nothing, speed only")
    lines.append(
        f"target pipeline ratio >= {p['target']}: "
        + (f"met by {', '.join(p['met_by'])}" if p["met_by"] else "met by no mode")
        + (f"; NOT met by {', '.join(p['not_met_by'])}" if p["not_met_by"] else "")
    )
    r = t.get("rss_ratio")
    if r is None:
        lines.append(f"target RSS ratio <= {RSS_TARGET}: not measured (--skip-rss)")
    else:
        lines.append(
            f"target RSS ratio <= {r['target']}: {'met' if r['met'] else 'NOT met'} ({r['ratio']:.3f})"
        )
    return lines
