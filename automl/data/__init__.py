"""Face data: the synthetic ``synthface`` default, readers for the real AU/FER formats, folds,
tasks and batched augmentation.

    from automl.data import load_data, make_task
    data = load_data("synth:fer")           # 48x48 grey, 7 classes, no files needed
    task = make_task(data)                  # loss / evaluate / score
"""

from automl.data.augment import Augment, occlude, to_float
from automl.data.facedata import FaceData
from automl.data.spec import load_data, parse_spec
from automl.data.tasks import Task, make_task

__all__ = ["Augment", "FaceData", "Task", "load_data", "make_task", "occlude", "parse_spec", "to_float"]
