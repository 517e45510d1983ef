"""Library argument -> command-line option: the one place library errors meet the CLI's flags.

A library :class:`~automl.errors.UserError` speaks of the thing (the device, the data spec, the
seed) and names in ``argument`` the library parameter it is about. :func:`automl.cli.main`
prints it with the option that sets that parameter appended (:func:`with_flag_hint`), e.g.
``error: no CUDA GPU is visible; use the device 'cpu' or 'auto' (--device)``.

Cheap to import (``automl --help`` loads it): plain data and string work only.
"""

from __future__ import annotations

import re

ARGUMENT_FLAGS: dict[str, str] = {
    # what to run on, and how
    "device": "--device",
    "seed": "--seed",
    "seeds": "--seeds",
    "cpu_threads": "--cpu-threads",
    "nproc": "--nproc",
    # configuration
    "preset": "--preset",
    "config_file": "--config",
    "resume": "--resume",
    # data (automl.data.load_data and the jobs' data specs)
    "data": "--data",
    "task": "--task",
    "image_size": "--image-size",
    "channels": "--channels",
    "fold": "--fold",
    "n": "--n",
    "split": "--split",
    # search
    "space": "--space",
    "strategy": "--strategy",
    "strategies": "--strategies",
    "epochs_scale": "--epochs-scale",
    "max_mflops": "--max-mflops",
    "max_params": "--max-params",
    "budget": "--max-mflops/--max-params",
    # training, distillation, attention maps
    "epochs": "--epochs",
    "occlude": "--occlude",
    "teacher": "--distill-from",
    "distill": "--distill-from",
    "temperature": "--temperature",
    "kd_weight": "--kd-weight",
    "triplet_weight": "--triplet-weight",
    "margin": "--margin",
    "concat_with": "--concat-with",
    "save_attention": "--save-attention",
    # export and outputs
    "format": "--format",
    "out": "--out",
    "db": "--db / AUTOML_DB",  # the store URL: the root option, or its environment variable
    # bench nas
    "random_archs": "--random-archs",
    "retrain_epochs": "--retrain-epochs",
    "with_nni": "--with-nni",
    # retrieval index and bench index (a hashing.HashingError's ``param``: automl.commands.common)
    "images": "--images",
    "labels_csv": "--labels",
    "hasher": "--hasher",
    "mode": "--mode",
    "methods": "--methods",
    "eta_s": "--eta-s",
    "eta_d": "--eta-d",
    "replay": "--replay",
    "bits": "--bits",
    "n_bits": "--bits",
    "batch_size": "--batch",
    "refresh_every": "--refresh-every",
    "eval_queries": "--eval-queries",
    "lock_timeout": "--lock-timeout",
    "k": "--k",
    "radius": "--radius",
    "dim": "--dim",
    "n_queries": "--queries",
    "numpy_queries": "--numpy-queries",
    # hpo
    "objectives": "--objectives",
    "study_name": "--study",
    "trials": "--trials",
    "workers": "--workers",
    "storage": "--storage",
    "pg_url": "--pg-url",
    # photos
    "model": "--model",
    "detect": "--no-detect",
    # predict (photos, folders, videos)
    "detect_every": "--detect-every",
    "detect_side": "--detect-side",
    "threshold": "--threshold",
    "out_dir": "--out-dir",
    "frame_step": "--frame-step",
    "label": "--label",
    # dashboard
    "host": "--host",
    "port": "--port",
    "index": "--index",
}
"""Library parameter name -> the option that sets it (the same name in every command that has it)."""


def flag_hint(argument: str | None) -> str | None:
    """The option that sets library parameter ``argument``; None when no option does."""
    return ARGUMENT_FLAGS.get(argument) if argument else None


def with_flag_hint(message: str, argument: str | None) -> str:
    """``message`` with `` (--flag)`` appended when ``argument`` maps to an option the message
    does not name already."""
    flag = flag_hint(argument)
    if flag is None or re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", message):
        return message
    return f"{message} ({flag})"
