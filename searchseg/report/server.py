"""``--serve``: the report over HTTP on the loopback interface, re-rendered whenever the results change,
and reloading itself in the browser while the search is still running."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from searchseg.layout import ExperimentLayout
from searchseg.report.experiment import load_experiment
from searchseg.report.html import render_report


class ReportServer(ThreadingHTTPServer):
    def __init__(self, experiment_dir: Path, host: str, port: int, refresh_seconds: int) -> None:
        self.experiment_dir, self.refresh_seconds = Path(experiment_dir), refresh_seconds
        self._cache: tuple[tuple, bytes] | None = None
        load_experiment(self.experiment_dir)  # a folder that is not an experiment fails before serving
        super().__init__((host, port), ReportHandler)

    def page(self) -> bytes:
        layout = ExperimentLayout(self.experiment_dir)
        watched = (layout.trials, layout.curves, layout.best_config, layout.final().metrics)
        stamp = tuple(path.stat().st_mtime_ns if path.exists() else 0 for path in watched)
        if self._cache is None or self._cache[0] != stamp:
            html = render_report(load_experiment(self.experiment_dir), refresh_seconds=self.refresh_seconds)
            self._cache = (stamp, html.encode("utf-8"))
        return self._cache[1]

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}/"


class ReportHandler(BaseHTTPRequestHandler):
    server: ReportServer

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        if self.path not in ("/", "/report.html"):
            self.send_error(404)
            return
        body = self.server.page()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # quiet: one line per request is noise here
        pass
