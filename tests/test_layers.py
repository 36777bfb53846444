"""The stage rule of pyproject.toml's import-linter contracts: each stage imports only the stages below it,
training imports no Ray or Optuna, the report no torch or Ray. A new upward import fails here and in .ci/run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_each_stage_imports_only_the_stages_below_it():
    done = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                           "lint_imports_command()"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout
