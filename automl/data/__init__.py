"""Face data: the synthetic ``synthface`` default, readers for the real AU/FER formats, folds,
tasks and batched augmentation.

    from automl.data import load_data, make_task
    data = load_data("synth:fer")           # 48x48 grey, 7 classes, no files needed
    task = make_task(data)                  # loss / evaluate / score

``--data`` specs (``KIND:PATH``):

* ``synth:fer`` (7 FER2013 classes), ``synth:fer8`` (+ contempt), ``synth:au`` (12 BP4D AUs),
  ``synth:disfa`` (8 DISFA AUs): rendered on the fly, subject-exclusive splits.
* ``fer2013:/p/fer2013.csv``; ``ferplus:/dir[?mode=majority|probability]`` (``fer2013new.csv``
  beside ``fer2013.csv``); ``rafdb:/root``; ``affectnet:/root[?classes=7|8]``; ``bp4d:/root`` and
  ``disfa:/root`` (3-fold subject CV, ``fold=1..3``); ``cifar10:/dir``; ``folder:/root``.

``automl data synth --format X --out DIR`` writes synthetic faces in each real layout.
"""

from automl.data.augment import Augment, occlude, to_float
from automl.data.facedata import FaceData
from automl.data.spec import load_data, parse_spec
from automl.data.tasks import Task, make_task

__all__ = ["Augment", "FaceData", "Task", "load_data", "make_task", "occlude", "parse_spec", "to_float"]
