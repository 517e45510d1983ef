"""``synth:fer``, ``synth:fer8``, ``synth:au``, ``synth:disfa``: the embedded synthetic default.

No files are needed; faces are rendered on the fly (thousands per second). Splits are
subject-exclusive: ``synth:fer`` holds out every fifth identity; the AU kinds use 3 subject folds
(``fold`` 1..3, default 1) like BP4D and DISFA.
"""

from __future__ import annotations

import numpy as np
import torch

from automl.data.facedata import FaceData
from automl.data.folds import check_fold
from automl.data.spec import LoadOptions
from automl.data.synthface.facs import BP4D_AUS, DISFA_AUS
from automl.data.synthface.generate import synth_action_units, synth_expressions
from automl.errors import UserError

DEFAULT_N = 5000
SYNTH_KINDS = {
    "fer": "7 expressions (FER2013 classes)",
    "fer8": "8 expressions (with contempt)",
    "au": "12 BP4D action units",
    "disfa": "8 DISFA action units",
}


def load_synth(path: str, opts: LoadOptions) -> FaceData:
    which = path.strip().lower()
    if which not in SYNTH_KINDS:
        raise UserError(f"unknown synthetic set 'synth:{path}': use one of {', '.join('synth:' + k for k in SYNTH_KINDS)}")
    n = int(opts.n or DEFAULT_N)
    if n < 6:
        raise UserError(f"synthetic sets need at least 6 faces, not {n}")
    size = int(opts.image_size or 48)
    channels = int(opts.channels or 1)
    if which in ("fer", "fer8"):
        s = synth_expressions(n, classes=7 if which == "fer" else 8, size=size, channels=channels, seed=opts.seed)
        test = s.subjects % 5 == 0
        if opts.fold is not None:  # honour a fold on FER too: 3 subject folds
            test = (s.subjects - 1) % 3 + 1 == check_fold(opts.fold)
        y = torch.from_numpy(s.expression)
        names = list(s.class_names)
        task = "fer"
    else:
        s = synth_action_units(n, size=size, channels=channels, seed=opts.seed)
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
