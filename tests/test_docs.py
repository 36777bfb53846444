"""The README and docs/ stay true to the code: links and file paths exist, and every flag a shown command uses is
one its parser knows (stale paths and flags were found by hand before)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PATH = re.compile(r"`((?:searchseg|tests|benchmarks|examples|scripts|docs)/[\w./-]+\.(?:py|yaml|md|png|json|txt))")
COMMAND = re.compile(r"(?:python -m searchseg\.|(?<![\w/.-])searchseg )(\w+)([^`\n#]*)")  # module or console form
MODULES = {"run": "searchseg.run", "trial": "searchseg.trial", "retrain": "searchseg.retrain",
           "predict": "searchseg.predict", "check": "searchseg.check", "report": "searchseg.report.__main__"}


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_relative_links_and_file_paths_exist(page):
    text = page.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (page.parent / target).exists(), f"{_name(page)} links to {target}, which does not exist"
    for path in PATH.findall(text):
        assert (ROOT / path).exists(), f"{_name(page)} names {path}, which does not exist"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_flag_of_a_shown_command_is_one_its_parser_knows(page):
    for module, rest in COMMAND.findall(page.read_text()):
        if module not in MODULES:
            continue
        known = {option for action in importlib.import_module(MODULES[module]).build_parser()._actions
                 for option in action.option_strings}
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
            assert flag in known, f"{_name(page)}: searchseg {module} has no {flag}"
