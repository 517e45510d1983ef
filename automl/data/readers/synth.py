"""``synth:fer``, ``synth:fer8``, ``synth:au``, ``synth:disfa``: the embedded synthetic default.

No files are needed; faces are rendered on the fly (thousands per second). Large requests (more
than a second or so of rendering) are cached under ``$AUTOML_CACHE`` (``~/.cache/automl``), keyed
by the request and a hash of the generator's source, so repeated trials do not re-render. Splits are
subject-exclusive: ``synth:fer`` holds out every fifth identity; the AU kinds use 3 subject folds
(``fold`` 1..3, default 1) like BP4D and DISFA.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from automl.data.cache import cache_key, open_mmap, save_atomic, user_cache_dir
from automl.data.facedata import FaceData
from automl.data.folds import check_fold
from automl.data.progress import progress_bar
from automl.data.spec import LoadOptions
from automl.data.synthface.facs import BP4D_AUS, DISFA_AUS
from automl.data.synthface.generate import SynthSet, synth_action_units, synth_expressions
from automl.errors import UserError

DEFAULT_N = 5000
SYNTH_KINDS = {
    "fer": "7 expressions (FER2013 classes)",
    "fer8": "8 expressions (with contempt)",
    "au": "12 BP4D action units",
    "disfa": "8 DISFA action units",
}


CACHE_MIN_PIXELS = 2000 * 48 * 48  # about a second of rendering on one core
PROGRESS_PIXELS = 6000 * 48 * 48  # a few seconds: worth a progress bar
_SOURCES = ("facs.py", "sampling.py", "render.py", "generate.py")


def generator_hash() -> str:
    """Changes whenever the generator's code does, so a stale cache is never read."""
    root = Path(__file__).resolve().parent.parent / "synthface"
    h = hashlib.sha1()
    for name in _SOURCES:
        h.update((root / name).read_bytes())
    return h.hexdigest()[:12]


def render_set(which: str, n: int, size: int, channels: int, seed: int) -> SynthSet:
    """Render (or read back from the cache) the synthetic set behind ``synth:<which>``."""

    def make() -> SynthSet:
        slow = n * size * size * channels >= PROGRESS_PIXELS
        what = f"rendering {n} synthetic faces"
        with progress_bar(what, n, minimum=0 if slow else n + 1) as advance:
            if which in ("fer", "fer8"):
                classes = 7 if which == "fer" else 8
                return synth_expressions(
                    n, classes=classes, size=size, channels=channels, seed=seed, progress=advance
                )
            return synth_action_units(n, size=size, channels=channels, seed=seed, progress=advance)

    if n * size * size * channels < CACHE_MIN_PIXELS:
        return make()
    group = "au" if which in ("au", "disfa") else which  # synth:au and synth:disfa share faces
    key = cache_key(
        {"synth": group, "n": n, "size": size, "channels": channels, "seed": seed, "src": generator_hash()}
    )
    base = user_cache_dir() / f"synth-{group}-{key}"
    parts = {k: Path(f"{base}.{k}.npy") for k in ("subjects", "intensity", "expression", "images")}
    if all(p.exists() for p in parts.values()):
        loaded = {
            k: (open_mmap(p) if k == "images" else np.load(p, allow_pickle=False)) for k, p in parts.items()
        }
        names = make_names(which)
        return SynthSet(
            loaded["images"], loaded["subjects"], loaded["intensity"], loaded["expression"], names
        )
    s = make()
    for k in ("subjects", "intensity", "expression", "images"):  # images last: their presence = complete
        save_atomic(parts[k], getattr(s, k))
    return s


def make_names(which: str) -> tuple[str, ...]:
    from automl.data.synthface.facs import FER7, FER8

    return FER8 if which == "fer8" else FER7


def load_synth(path: str, opts: LoadOptions) -> FaceData:
    which = path.strip().lower()
    if which not in SYNTH_KINDS:
        raise UserError(
            f"unknown synthetic set 'synth:{path}': use one of {', '.join('synth:' + k for k in SYNTH_KINDS)}"
        )
    n = int(opts.n or DEFAULT_N)
    if n < 6:
        raise UserError(f"synthetic sets need at least 6 faces, not {n}")
    size = int(opts.image_size or 48)
    channels = int(opts.channels or 1)
    s = render_set(which, n, size, channels, opts.seed)
    if which in ("fer", "fer8"):
        test = s.subjects % 5 == 0
        if opts.fold is not None:  # honour a fold on FER too: 3 subject folds
            test = (s.subjects - 1) % 3 + 1 == check_fold(opts.fold)
        y = torch.from_numpy(s.expression)
        names = list(s.class_names)
        task = "fer"
    else:
        aus = BP4D_AUS if which == "au" else DISFA_AUS
        test = (s.subjects - 1) % 3 + 1 == check_fold(opts.fold)
        y = torch.from_numpy(s.occurrence(aus))
        names = [f"AU{a}" for a in aus]
        task = "au"
    if test.all() or not test.any():  # tiny n: make sure both splits exist
        test = np.arange(n) % 5 == 0
    x = torch.from_numpy(s.images)
    tr = torch.from_numpy(np.flatnonzero(~test))
    te = torch.from_numpy(np.flatnonzero(test))
    return FaceData(
        name=f"synth:{which}",
        task=task,
        class_names=names,
        train_x=x[tr].contiguous(),
        train_y=y[tr].contiguous(),
        test_x=x[te].contiguous(),
        test_y=y[te].contiguous(),
        train_subjects=s.subjects[~test],
        test_subjects=s.subjects[test],
        meta={"synthetic": True, "seed": opts.seed, "fold": opts.fold},
    )
