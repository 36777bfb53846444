"""``study.db`` written while optuna-dashboard may open it."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna

from searchseg.tracking.optuna_study import StudyWriter


def open_at_once(path: Path, writers: int) -> list[BaseException]:
    """``writers`` StudyWriters opening a new ``path`` at the same moment; what each failed with."""
    failures: list[BaseException] = []

    def connect() -> None:
        try:
            StudyWriter(path, "race", None, "val_miou", "max")
        except Exception as error:  # noqa: BLE001 - every failure is the finding
            failures.append(error)

    threads = [threading.Thread(target=connect) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_connections_opening_a_new_study_file_at_once_all_succeed(tmp_path):
    """Optuna creates its tables when it first connects; a reader that opens study.db as it appears races the
    writer for them (SQLite then says 'table studies already exists', or fails on the version row)."""
    for attempt in range(5):
        path = tmp_path / f"study-{attempt}.db"
        assert open_at_once(path, writers=4) == []
        assert optuna.load_study(study_name="race", storage=f"sqlite:///{path}").direction.name == "MAXIMIZE"
