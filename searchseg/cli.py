"""``searchseg COMMAND [ARGS]``: one command in front of every entry point.

``python -m searchseg.run`` and the other module forms keep working: each subcommand hands its arguments to
that module's ``main``. A subcommand's module is imported only when it runs, so ``searchseg report`` stays as
light as ``python -m searchseg.report`` (neither torch nor Ray).
"""

from __future__ import annotations

import importlib
import sys

from searchseg import __version__
from searchseg.errors import UserError, cli_entry, unknown_name

COMMANDS = {  # name -> (module whose main runs it, what it does)
    "run": ("searchseg.run", "search, then the final model, its test evaluation and the report"),
    "trial": ("searchseg.trial", "train one configuration without Ray, to debug it"),
    "check": ("searchseg.check", "check a dataset before searching: files, pairs, sizes, mask values, balance"),
    "retrain": ("searchseg.retrain", "retrain an experiment's best configuration and evaluate it on the test split"),
    "predict": ("searchseg.predict", "predict masks for new images of any size with an experiment's final model"),
    "report": ("searchseg.report.__main__", "write (or serve) an experiment's dashboards"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: searchseg COMMAND [ARGS]   (searchseg {__version__})", "",
             "Hyperparameter search for semantic image segmentation.", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "searchseg COMMAND --help shows a command's options; with no arguments, `searchseg run` searches "
              "the built-in demo data."]
    return "\n".join(lines)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(usage(), file=sys.stderr)
        sys.exit(2)
    if argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] == "--version":
        print(f"searchseg {__version__}")
        return
    if argv[0] not in COMMANDS:
        if argv[0].startswith("-"):
            raise UserError(f"{argv[0]} comes after a command; see searchseg --help")
        raise unknown_name("command", argv[0], COMMANDS)
    importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:], prog=f"searchseg {argv[0]}")


if __name__ == "__main__":
    main()
