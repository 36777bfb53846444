"""The report in a real headless Chromium: the file and the --serve page render every figure with data,
without console errors. Skips (with the reason) only when no Chromium can be found."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from searchseg.report.html import write_report
from searchseg.report.server import ReportServer
from tests.report.test_report import make_experiment

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them: apt-get install -y "
           "chromium chromium-driver)",
)

COUNT_FIGURES = """
const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
// _fullData holds the traces as plotly drew them (arrays decoded); _length is a trace's number of points.
return plots.map(p => ({id: p.id, traces: (p._fullData || []).length,
                        points: (p._fullData || []).reduce((n, t) => n + (t._length || (t.z && t.z.length) || 0), 0),
                        svg: p.querySelectorAll('svg').length}));
"""


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1300,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def assert_rendered(browser, url: str, screenshot: Path) -> list[dict]:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(browser, 30).until(
        lambda d: all(f["svg"] > 0 for f in d.execute_script(COUNT_FIGURES)) and d.execute_script(COUNT_FIGURES))
    figures = browser.execute_script(COUNT_FIGURES)
    assert figures, "no plotly figure on the page"
    for figure in figures:
        assert figure["traces"] > 0 and figure["points"] > 0, f"figure without data: {figure}"
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1300, min(height, 12000))
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    return figures


def test_report_file_renders_every_figure(browser, tmp_path):
    root = make_experiment(tmp_path / "exp")
    report = write_report(root)
    figures = assert_rendered(browser, report.resolve().as_uri(), tmp_path / "report.png")
    assert len(figures) == 10  # history, parallel, importance, latency front, curves, 2 heatmaps, per-class,
    # confusion, retraining
    assert browser.execute_script("return document.querySelectorAll('.gallery img').length") == 1


def test_served_report_renders_and_refreshes_while_running(browser, tmp_path):
    root = make_experiment(tmp_path / "live", finished=False, final=False)
    server = ReportServer(root, "127.0.0.1", 0, refresh_seconds=30)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        figures = assert_rendered(browser, server.url, tmp_path / "served.png")
        assert len(figures) >= 5
        assert browser.find_element("css selector", "meta[http-equiv='refresh']") is not None
    finally:
        server.shutdown()
        server.server_close()
