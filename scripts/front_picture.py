"""Draw an experiment's accuracy-against-latency front (the report's figure) as a PNG, for the README.

Usage: python scripts/front_picture.py results/NAME docs/pareto_front.png

Plotly writes the figure as HTML; headless Chromium (the browser the report test uses) takes the screenshot, so
no image-export package is needed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from searchseg.report import figures
from searchseg.report.experiment import load_experiment
from searchseg.tracking.pareto import drawn_costs, pareto_table

WIDTH, HEIGHT = 900, 520


def main(experiment: str, out: str) -> None:
    exp = load_experiment(Path(experiment))
    table = pareto_table(exp.trials, exp.metric, exp.settings.mode, drawn_costs(exp.settings.objectives))
    figure = figures.pareto_figure(table, exp.metric, exp.searched)
    figure.update_layout(width=WIDTH, height=HEIGHT)
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("error: no Chromium found to take the screenshot")
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "front.html"
        figure.write_html(page, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=5000",
                        f"--screenshot={Path(out).resolve()}", page.as_uri()], check=True, capture_output=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[2])
    main(sys.argv[1], sys.argv[2])
