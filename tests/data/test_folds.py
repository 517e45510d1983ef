"""The published BP4D/DISFA folds and the subject-exclusive fold assignment."""

from __future__ import annotations

import numpy as np
import pytest

from automl.data.folds import (
    BP4D_FOLDS,
    BP4D_SUBJECTS,
    DISFA_FOLDS,
    DISFA_SUBJECTS,
    assign_folds,
    check_fold,
    split_by_fold,
)


def test_published_folds_are_disjoint_and_complete():
    assert len(BP4D_SUBJECTS) == len(set(BP4D_SUBJECTS)) == 41
    assert [len(f) for f in BP4D_FOLDS] == [14, 14, 13]
    assert len(DISFA_SUBJECTS) == len(set(DISFA_SUBJECTS)) == 27
    assert DISFA_FOLDS[0][:3] == ("SN002", "SN010", "SN001")
    assert BP4D_FOLDS[2][0] == "F007" and DISFA_FOLDS[2][-1] == "SN004"


def test_assignment_keeps_published_groups_and_deals_unknown_subjects():
    table = assign_folds(["F001", "M011", "F007", "X1", "X2", "X3"], BP4D_FOLDS)
    assert (table["F001"], table["M011"], table["F007"]) == (1, 2, 3)
    assert sorted(table[s] for s in ("X1", "X2", "X3")) == [1, 2, 3]


@pytest.mark.parametrize("seed", range(3))
def test_split_by_fold_never_shares_a_subject(seed):
    rng = np.random.default_rng(seed)
    subjects = rng.choice(list(DISFA_SUBJECTS) + ["SN999"], size=500)
    seen = np.zeros(len(subjects), bool)
    for fold in (1, 2, 3):
        test = split_by_fold(subjects, fold, DISFA_FOLDS)
        assert not set(subjects[test]) & set(subjects[~test])
        assert not (seen & test).any()
        seen |= test
    assert seen.all()  # every sample is tested exactly once over the three folds


def test_check_fold():
    assert check_fold(None) == 1 and check_fold(3) == 3
    with pytest.raises(ValueError):
        check_fold(0)
