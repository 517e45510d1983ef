"""Import NNI quietly, or fail with a message that says how to get it.

NNI 3.0 scans ``torch.nn`` at import and warns about every class newer than it knows (``Buffer``,
...): noise about NNI's own bookkeeping, not about the user's space, so it is silenced here once.
"""

from __future__ import annotations

import warnings

NNI_MISSING_HINT = "install the optional 'nni' extra: pip install -e '.[nni]'"

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        import nni  # noqa: F401
        import nni.mutable as nni_mutable
        from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace
except ImportError as exc:  # pragma: no cover - exercised where the extra is absent
    raise ModuleNotFoundError(f"NNI is not installed ({exc}); {NNI_MISSING_HINT}") from exc

__all__ = ["InputChoice", "LayerChoice", "ModelSpace", "nni_mutable", "NNI_MISSING_HINT"]
