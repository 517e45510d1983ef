"""The learning checks on the dashboard: a ``signal`` column on the Runs page, a red banner on the
page of a run that learned nothing, a yellow one for weak findings, none for a run that learned.

The verdicts are the library's own (``automl.learning_checks``) on synthetic classifier outputs,
stored through the real Store API, as ``automl train`` stores them.
"""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from automl.learning_checks import Finding, check_classifier, summarize
from automl.store import open_store

APP = "../../dashboard/app.py"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, int]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('signal') / 'automl.db'}"
    store = open_store(url)
    y = np.arange(47) % 7
    constant = np.zeros((47, 7))
    constant[:, 0] = 1.0
    good_y = np.arange(500) % 7
    good_pred = np.where(np.random.default_rng(0).random(500) < 0.8, good_y, (good_y + 1) % 7)
    verdicts = {
        "nothing": check_classifier("fer", constant, y, class_names=["Angry", *"abcdef"]),
        "learned": check_classifier("fer", np.eye(7)[good_pred], good_y),
        "weak": summarize(
            [Finding("few_classes_predicted", "only 2 of the 7 classes are ever predicted", severity="weak")],
            ["predictions"],
            split="test",
        ),  # fmt: skip
    }
    ids = {}
    for name, verdict in verdicts.items():
        run = store.create_run(kind="train", config={}, space="darts", task="fer", data="synth:fer")
        store.set_state(run, "running")
        store.set_summary(run, {"test_metric": 0.5, "signal": verdict})
        store.set_state(run, "completed")
        ids[name] = run
    ids["unchecked"] = store.create_run(kind="search", config={}, space="darts", task="fer")
    store.close()
    return url, ids


def _open(url: str, monkeypatch: pytest.MonkeyPatch, path: str | None = None, **query: str) -> AppTest:
    monkeypatch.setenv("AUTOML_DB", url)
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if path is not None:
        at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_runs_table_has_a_signal_column(runs, monkeypatch: pytest.MonkeyPatch) -> None:
    url, ids = runs
    at = _open(url, monkeypatch)
    df = next(d for d in at.dataframe if d.proto.id and "runs_table" in d.proto.id).value
    flags = dict(zip(df["id"], df["signal"], strict=True))
    assert flags == {
        ids["nothing"]: "NO SIGNAL",
        ids["learned"]: "ok",
        ids["weak"]: "weak",
        ids["unchecked"]: "-",
    }


def test_run_page_banner_says_when_nothing_was_learned(runs, monkeypatch: pytest.MonkeyPatch) -> None:
    url, ids = runs
    at = _open(url, monkeypatch, "views/run.py", run=str(ids["nothing"]))
    (banner,) = [e.value for e in at.error]
    assert f"NO SIGNAL: train run #{ids['nothing']} shows no sign of learning" in banner
    assert "`metric_at_chance`" in banner and "`predictions_collapsed`" in banner and "Angry" in banner

    at = _open(url, monkeypatch, "views/run.py", run=str(ids["weak"]))
    assert not at.error and any("few_classes_predicted" in w.value for w in at.warning)

    for quiet in ("learned", "unchecked"):
        at = _open(url, monkeypatch, "views/run.py", run=str(ids[quiet]))
        assert not at.error and not any("Learning checks" in w.value for w in at.warning), quiet


def test_retrieval_page_banner_for_an_index_whose_codes_collapsed(tmp_path, monkeypatch) -> None:
    from automl.learning_checks import check_index
    from hashing import BSODH
    from hashing.index import HashIndex

    emb = np.ones((60, 8))  # an embedder that learned nothing: one point for every face
    labels = np.arange(60) % 3
    index = HashIndex(BSODH(16, seed=0), 8)
    index.add(emb, labels=labels, sources=[f"face{i}.png" for i in range(60)])
    index.extra = {"signal": check_index(index.codes, n_bits=16, labels=index.labels, embeddings=emb)}
    index.save(tmp_path / "index")
    monkeypatch.setenv("AUTOML_INDEXES", str(tmp_path / "index"))
    at = _open(f"sqlite:///{tmp_path / 'none.db'}", monkeypatch, "views/retrieval.py")
    banners = [e.value for e in at.error]
    assert any("NO SIGNAL: index" in b and "`codes_few_distinct`" in b for b in banners), banners
