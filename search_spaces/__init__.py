"""Search spaces: candidate ops, supernets, genotype <-> network.

``create_space(name, **options)`` is the one entry point (see :mod:`search_spaces.registry`;
a user's ``nni:`` space is imported only with ``allow_user_code``);
spaces are imported lazily so that using one space never pays for (or breaks on) another. This
package never imports :mod:`automl`.
"""

from __future__ import annotations

from search_spaces.base import Decision, Genotype, SearchSpace, Supernet
from search_spaces.registry import SPACES, UnknownSpaceError, UserCodeRefusedError, create_space

__all__ = [
    "SPACES",
    "Decision",
    "Genotype",
    "SearchSpace",
    "Supernet",
    "UnknownSpaceError",
    "UserCodeRefusedError",
    "create_space",
]
