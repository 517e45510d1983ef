"""Make ``import hashing`` resolve to the package, not to this test folder.

pytest puts ``tests/`` on ``sys.path`` (rootdir-relative imports, no ``__init__.py`` in tests), and
this folder is also called ``hashing``; without the repository root on ``sys.path`` Python would
import it as an empty namespace package. (A project-wide ``pythonpath = ["."]`` in the pytest
options makes this unnecessary.)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
for name in [m for m in sys.modules if m == "hashing" or m.startswith("hashing.")]:
    if getattr(sys.modules[name], "__file__", None) is None:
        del sys.modules[name]
