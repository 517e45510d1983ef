"""One loader per ``--data`` kind; :data:`LOADERS` maps the kind to its function."""

from __future__ import annotations

from automl.data.readers.affectnet import load_affectnet
from automl.data.readers.au_video import load_bp4d, load_disfa
from automl.data.readers.cifar10 import load_cifar10
from automl.data.readers.fer2013 import load_fer2013, load_ferplus
from automl.data.readers.folder import load_folder
from automl.data.readers.rafdb import load_rafdb
from automl.data.readers.synth import load_synth

LOADERS = {
    "synth": load_synth,
    "fer2013": load_fer2013,
    "ferplus": load_ferplus,
    "rafdb": load_rafdb,
    "affectnet": load_affectnet,
    "bp4d": load_bp4d,
    "disfa": load_disfa,
    "cifar10": load_cifar10,
    "folder": load_folder,
}
