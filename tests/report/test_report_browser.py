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


PARALLEL_LINES = """
const plot = Array.from(document.querySelectorAll('.js-plotly-plot'))
    .find(p => (p._fullData || []).some(t => t.type === 'parcoords'));
const trace = plot._fullData.find(t => t.type === 'parcoords');
// plotly draws no line for a trial with a missing value on any axis
const drawn = Array.from({length: trace._length}, (_, i) =>
    trace.dimensions.every(d => d.values[i] !== null && d.values[i] !== undefined && !Number.isNaN(d.values[i])));
return {lines: trace._length, drawn: drawn.filter(Boolean).length, axes: trace.dimensions.map(d => d.label)};
"""


def test_parallel_coordinates_draw_a_line_for_every_finished_trial_with_a_conditional_parameter(browser, tmp_path):
    import pandas as pd

    from tests.report.test_report import SPACE

    root = make_experiment(tmp_path / "exp")
    (root / "space.yaml").write_text(SPACE + "  loss.focal: {choice: [0.0, 0.5]}\n"
                                     "  focal_gamma: {uniform: [1.0, 4.0], when: {loss.focal: nonzero}}\n")
    trials = pd.read_csv(root / "trials.csv")
    trials["loss.focal"] = [0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0]
    trials["focal_gamma"] = [2.0, None, None, None, 3.0, None, None]  # set only with the focal loss
    trials.to_csv(root / "trials.csv", index=False)
    assert_rendered(browser, write_report(root).resolve().as_uri(), tmp_path / "report.png")
    parallel = browser.execute_script(PARALLEL_LINES)
    finished = trials["status"].isin(["completed", "early_stopped"]).sum()
    assert "focal_gamma" in parallel["axes"] and parallel["lines"] == parallel["drawn"] == finished == 4, parallel


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
