"""Subject-exclusive 3-fold cross-validation, with the standard BP4D and DISFA folds.

AU detection is evaluated on people the model never saw: the literature (JAA-Net, ARL,
ME-GraphAU) uses the same three subject groups per data set, copied here so numbers are
comparable in protocol (never in value: synthetic data is labelled as such).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BP4D_FOLDS: tuple[tuple[str, ...], ...] = (
    (
        "F001",
        "M007",
        "F018",
        "F008",
        "F002",
        "M004",
        "F010",
        "F009",
        "M012",
        "M001",
        "F016",
        "M014",
        "F023",
        "M008",
    ),
    (
        "M011",
        "F003",
        "M010",
        "M002",
        "F005",
        "F022",
        "M018",
        "M017",
        "F013",
        "M016",
        "F020",
        "F011",
        "M013",
        "M005",
    ),
    ("F007", "F015", "F006", "F019", "M006", "M009", "F012", "M003", "F004", "F021", "F017", "M015", "F014"),
)
DISFA_FOLDS: tuple[tuple[str, ...], ...] = tuple(
    tuple(f"SN{int(s):03d}" for s in group)
    for group in (
        (2, 10, 1, 26, 27, 32, 30, 9, 16),
        (13, 18, 11, 28, 12, 6, 31, 21, 24),
        (3, 29, 23, 25, 8, 5, 7, 17, 4),
    )
)
BP4D_SUBJECTS: tuple[str, ...] = tuple(s for g in BP4D_FOLDS for s in g)
DISFA_SUBJECTS: tuple[str, ...] = tuple(s for g in DISFA_FOLDS for s in g)


def check_fold(fold: int | None, n_folds: int = 3) -> int:
    """``None`` means fold 1 (the usual first report); anything else must be 1..n_folds."""
    if fold is None:
        return 1
    if not 1 <= int(fold) <= n_folds:
        raise ValueError(f"fold must be 1..{n_folds}, got {fold}")
    return int(fold)


def fold_of(subject: str, folds: Sequence[Sequence[str]]) -> int:
    """1-based fold that holds ``subject``, 0 if none does."""
    for i, group in enumerate(folds, start=1):
        if subject in group:
            return i
    return 0


def assign_folds(
    subjects: Sequence[str], folds: Sequence[Sequence[str]] | None = None, n_folds: int = 3
) -> dict:
    """Fold (1..n) of every distinct subject: the published groups when given, else balanced
    round-robin over the sorted subject list (deterministic, subject-exclusive by construction).

    Subjects missing from published groups (a partial copy of a data set, or synthetic names) are
    dealt round-robin too, so no sample is lost.
    """
    out: dict[str, int] = {}
    extra: list[str] = []
    for s in sorted(set(subjects)):
        f = fold_of(s, folds) if folds else 0
        if f:
            out[s] = f
        else:
            extra.append(s)
    for i, s in enumerate(extra):
        out[s] = i % n_folds + 1
    return out


def split_by_fold(
    subjects: np.ndarray, fold: int, folds: Sequence[Sequence[str]] | None = None
) -> np.ndarray:
    """Boolean mask over samples: True for the test subjects of ``fold``."""
    names, inverse = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    table = assign_folds(list(names), folds)
    per_subject = np.array([table[s] for s in names], dtype=np.int64)
    return per_subject[inverse.reshape(-1)] == fold
