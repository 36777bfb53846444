"""``python -m searchseg.report results/EXPERIMENT [--serve] [--port N]``: the experiment's dashboards."""

from __future__ import annotations

import argparse
from pathlib import Path

from searchseg.errors import UserError, cli_entry


def build_parser(prog: str = "python -m searchseg.report") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write EXPERIMENT/report.html (self-contained: opens offline) and EXPERIMENT/study.db (open it "
                    "with optuna-dashboard sqlite:///EXPERIMENT/study.db); with --serve, also serve the report and "
                    "refresh it while the search runs.",
    )
    parser.add_argument("experiment", type=Path, help="experiment folder, e.g. results/arch_loss-20261121-120000")
    parser.add_argument("--serve", action="store_true", help="serve the report over HTTP until Ctrl-C")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8765, help="port to serve on (0 picks a free one)")
    parser.add_argument("--refresh", type=int, default=15, help="seconds between reloads while the search runs")
    return parser


@cli_entry
def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = (build_parser(prog) if prog else build_parser()).parse_args(argv)
    if args.serve and not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port; pick one in 1-65535 (0 picks a free one)")
    # pandas, plotly and optuna take a second or more to import: not for --help or a wrong flag
    from searchseg.report.experiment import load_experiment
    from searchseg.report.html import write_report
    from searchseg.report.server import ReportServer
    from searchseg.tracking.optuna_study import export_study
    from searchseg.tracking.pareto import write_pareto

    experiment = load_experiment(args.experiment)
    print(f"report: {write_report(args.experiment)}")
    print(f"pareto front: {write_pareto(experiment)}")
    study = export_study(experiment)
    print(f"optuna study: optuna-dashboard sqlite:///{study.resolve()}")
    if not args.serve:
        return
    try:
        server = ReportServer(args.experiment, args.host, args.port, args.refresh)
    except OSError as err:
        raise UserError(f"cannot serve on {args.host}:{args.port} ({err.strerror}); pick another --port") from None
    print(f"serving {server.url} (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
