"""End to end: ``automl dashboard`` as a subprocess, every page opened in Debian chromium.

Screenshots of each page land in ``$AUTOML_SCREENSHOTS_DIR`` when set (CI can keep them as
artifacts), else in a pytest temporary directory (printed with ``-s``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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
def server(seeded, tmp_path_factory):
    """``automl dashboard --db URL --port P`` in its own process group, stopped by its pid."""
    _require_chromium()
    port = _free_port()
    log = tmp_path_factory.mktemp("dash_server") / "server.log"
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOML_DB", "AUTOML_INDEXES")}
    indexes = [str(p) for p in seeded.index_dirs]
    cmd = [sys.executable, "-m", "automl", "dashboard", "--db", seeded.url, "--port", str(port)]
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
    page.locator(".js-plotly-plot").first.wait_for(timeout=20_000)
    assert page.locator(".js-plotly-plot").count() >= 2  # live curves + theta heatmap (first tab)
    _shot(page, shots / "run_distribution.png")
    page.locator(".js-plotly-plot").nth(1).screenshot(path=str(shots / "run_theta_heatmap.png"))
    page.get_by_role("tab", name="Architecture", exact=True).click()
    _settle(page)
    page.locator('[data-testid="stGraphVizChart"] svg').first.wait_for(timeout=20_000)
    assert page.locator('[data-testid="stGraphVizChart"] svg').count() == 2  # normal + reduce cells
    _shot(page, shots / "run_architecture.png")
    page.locator('[data-testid="stGraphVizChart"]').first.screenshot(path=str(shots / "run_normal_cell.png"))

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
    page.get_by_text("Top 10 by Hamming distance").wait_for(timeout=30_000)
    _settle(page)
    assert images.count() == 11
    _shot(page, shots / "retrieval_upload.png")
    offsite = [u for u in page.requested if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert offsite == [], f"the dashboard fetched from elsewhere (it must work offline): {offsite[:5]}"
    assert page.get_by_text("Deploy", exact=True).count() == 0  # the minimal toolbar: a local viewer
    print(f"screenshots in {shots}")
