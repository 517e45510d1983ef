"""End to end: ``automl dashboard`` as a subprocess, every page opened in Debian chromium.

The server reads a copy of the seeded store (the test adds a run to it), with a real process
(``live_writer.py``) owning a live search run: every page is screenshotted finished and live, the
live run again after that process is killed, and the key text of each state is asserted on the
page. Screenshots land in ``$AUTOML_SCREENSHOTS_DIR`` when set (CI can keep them as artifacts),
else in a pytest temporary directory (printed with ``-s``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard.retrieval_data import WHOLE_IMAGE_LABEL

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_chromium() -> None:
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is absent (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright Python package is not installed"
    if missing is None:
        return
    if os.environ.get("AUTOML_REQUIRE_SYSTEM_DEPS") == "1":
        pytest.fail(f"required system dependency missing in CI: {missing}")
    pytest.skip(missing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def store_copy(seeded, tmp_path_factory) -> str:
    """The seeded store copied (runs, epochs, the Optuna studies): runs added here stay here.
    SQLite's backup API, not a file copy: pages still in the write-ahead log come along."""
    target = tmp_path_factory.mktemp("browser_store") / "automl.db"
    source = sqlite3.connect(seeded.url.removeprefix("sqlite:///"))
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return f"sqlite:///{target}"


@pytest.fixture(scope="module")
def server(seeded, store_copy, tmp_path_factory):
    """``automl dashboard --db URL --port P`` in its own process group, stopped by its pid."""
    _require_chromium()
    port = _free_port()
    log = tmp_path_factory.mktemp("dash_server") / "server.log"
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOML_DB", "AUTOML_INDEXES")}
    indexes = [str(p) for p in seeded.index_dirs]
    cmd = [sys.executable, "-m", "automl", "dashboard", "--db", store_copy, "--port", str(port)]
    for path in indexes:
        cmd += ["--index", path]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 45
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
                if resp.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"dashboard did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.requested = []  # every URL the page asked for: all must stay on this machine
        page.on("request", lambda request: page.requested.append(request.url))
        yield page
        browser.close()


def _open(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    _settle(page)


def _settle(page) -> None:
    """Wait until the script run is over: the status widget gone and still gone a moment later
    (it appears only after a short delay, so one check right after loading is not enough)."""
    quiet = 0
    deadline = time.monotonic() + 60
    while quiet < 3 and time.monotonic() < deadline:
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)
        page.wait_for_timeout(250)
        quiet = quiet + 1 if page.locator('[data-testid="stStatusWidget"]').count() == 0 else 0


def _no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def _shot(page, path: Path) -> None:
    """Once the page has settled: no exception element, then a screenshot."""
    _settle(page)
    _no_exception(page)
    page.screenshot(path=str(path), full_page=True)


def test_every_page_renders_in_chromium(server, seeded, browser_page, tmp_path_factory) -> None:
    wanted = os.environ.get("AUTOML_SCREENSHOTS_DIR")  # CI keeps them as artifacts
    shots = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    page = browser_page

    _open(page, f"{server}/")
    page.get_by_role("heading", name="Runs").wait_for(timeout=20_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=20_000)
    _shot(page, shots / "runs.png")

    _open(page, f"{server}/run?run={seeded.ddpnas_run}")
    page.get_by_role("heading", name=f"Run #{seeded.ddpnas_run}").wait_for(timeout=20_000)
    # Results first: the Architecture tab is open, with the genotype's normal and reduce cells.
    page.locator('[data-testid="stGraphVizChart"] svg').first.wait_for(timeout=20_000)
    assert page.locator('[data-testid="stGraphVizChart"] svg').count() == 2
    _shot(page, shots / "run_architecture.png")
    page.locator('[data-testid="stGraphVizChart"]').first.screenshot(path=str(shots / "run_normal_cell.png"))
    page.get_by_role("tab", name="Distribution", exact=True).click()
    _settle(page)
    heatmap = page.locator('[data-testid="stTabPanel"]:visible .js-plotly-plot').first
    heatmap.wait_for(timeout=20_000)
    _shot(page, shots / "run_distribution.png")
    heatmap.screenshot(path=str(shots / "run_theta_heatmap.png"))

    _open(page, f"{server}/compare?runs={seeded.ddpnas_run},{seeded.train_run}")
    page.get_by_role("heading", name="Compare runs").wait_for(timeout=20_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=20_000)
    _shot(page, shots / "compare.png")

    _open(page, f"{server}/hpo")
    page.get_by_role("heading", name="Hyper-parameter studies").wait_for(timeout=20_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    _shot(page, shots / "hpo.png")

    _open(page, f"{server}/retrieval")
    page.get_by_role("heading", name="Retrieval").wait_for(timeout=20_000)
    images = page.locator('[data-testid="stImage"] img')
    images.first.wait_for(timeout=30_000)
    assert images.count() == 11  # the query item and its top 10
    _shot(page, shots / "retrieval.png")
    # Query by uploading a face: the uploaded image, then its top 10.
    page.get_by_text("Upload a face image").click()
    _settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(seeded.index_images[1]))
    # The seeded faces are flat drawings the detector does not find: the page says so and searches
    # nothing until the user asks for the whole image.
    page.get_by_text("No face was detected").first.wait_for(timeout=30_000)
    assert page.get_by_text("Top 10 by Hamming distance").count() == 0
    _shot(page, shots / "retrieval_upload_no_face.png")
    page.get_by_text(WHOLE_IMAGE_LABEL, exact=True).click()
    page.get_by_text("Top 10 by Hamming distance").wait_for(timeout=30_000)
    _settle(page)
    assert images.count() == 11
    _shot(page, shots / "retrieval_upload.png")
    offsite = [u for u in page.requested if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert offsite == [], f"the dashboard fetched from elsewhere (it must work offline): {offsite[:5]}"
    assert page.get_by_text("Deploy", exact=True).count() == 0  # the minimal toolbar: a local viewer
    print(f"screenshots in {shots}")


@pytest.fixture
def live_run(store_copy, tmp_path):
    """A real process owning a live search run of the served store: (run id, the process)."""
    ready = tmp_path / "ready"
    writer = Path(__file__).with_name("live_writer.py")
    proc = subprocess.Popen([sys.executable, str(writer), store_copy, str(ready)], start_new_session=True)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the live writer did not start (exit {proc.poll()})")
        time.sleep(0.2)
    yield int(ready.read_text()), proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_run_states_in_chromium(server, seeded, browser_page, live_run, tmp_path_factory) -> None:
    """Finished, live and killed runs, an HPO run and a training: the words a user reads."""
    wanted = os.environ.get("AUTOML_SCREENSHOTS_DIR")
    shots = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots_states")
    shots.mkdir(parents=True, exist_ok=True)
    page = browser_page
    run_id, proc = live_run

    _open(page, f"{server}/run?run={seeded.ddpnas_run}")
    page.get_by_text("Found architecture:").wait_for(timeout=20_000)
    page.get_by_text("test accuracy").first.wait_for(timeout=20_000)  # the headline: its metric's name
    text = _text(page)
    assert "Result" in text and "test accuracy" in text and "every epoch trains one path" in text
    page.get_by_role("tab", name="Distribution", exact=True).click()
    _settle(page)
    page.get_by_text("Update rule V1").wait_for(timeout=20_000)
    _shot(page, shots / "run_finished_distribution.png")

    _open(page, f"{server}/run?run={run_id}")
    page.get_by_text(re.compile(r"epochs · .* per epoch · about .* left")).wait_for(timeout=20_000)  # the ETA
    page.get_by_text("val mean F1").first.wait_for(timeout=20_000)  # the headline names the AU metric
    text = _text(page)
    assert "epochs" in text and "per epoch" in text
    _shot(page, shots / "run_live.png")
    _open(page, f"{server}/")
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=20_000)
    _shot(page, shots / "runs_live.png")

    os.killpg(proc.pid, signal.SIGKILL)  # killed: it never records its end
    proc.wait()
    _open(page, f"{server}/run?run={run_id}")
    page.get_by_text("is not running").wait_for(timeout=20_000)
    assert "has exited" in _text(page) and "per epoch · about" not in _text(page)  # no ETA for the dead
    _shot(page, shots / "run_dead.png")

    _open(page, f"{server}/run?run={seeded.hpo_run}")
    page.get_by_role("tab", name="Trials", exact=True).wait_for(timeout=20_000)
    assert "No epoch recorded yet" not in _text(page)
    assert page.get_by_role("tab", name="Distribution", exact=True).count() == 0
    _shot(page, shots / "run_hpo.png")

    _open(page, f"{server}/run?run={seeded.train_run}")
    page.get_by_text("test accuracy").first.wait_for(timeout=20_000)
    _shot(page, shots / "run_train.png")
    _no_exception(page)


def test_a_deep_link_opened_first_gets_the_whole_app(server, seeded, browser_page) -> None:
    """A bookmarked /run?run=N opened in a fresh browser session is served through the app's
    navigation (its sidebar, store caption and wide layout), not as a bare page script."""
    context = browser_page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        _open(page, f"{server}/run?run={seeded.train_run}")
        page.get_by_role("heading", name=f"Run #{seeded.train_run}").wait_for(timeout=20_000)
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    finally:
        context.close()
    assert "store:" in sidebar and "Runs" in sidebar and "Retrieval" in sidebar
