"""One live run per experiment: an exclusive lock on ``.lock`` in its folder, held until the process ends.

The operating system drops the lock when the process dies, however it dies, so a killed run never leaves a
stale lock behind. ``flock`` is per machine (and not honoured by every network file system): two drivers on
different machines sharing one ``--storage`` folder are not kept apart by it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from searchseg.errors import UserError
from searchseg.layout import ExperimentLayout

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked
    fcntl = None  # type: ignore[assignment]

_held: dict[Path, IO] = {}  # open handles keep the locks; this process may come back to a folder it holds


def lock_experiment(folder: Path) -> None:
    """Take the experiment in ``folder`` for this process, or fail with one line if another run holds it."""
    folder = Path(folder).resolve()
    if fcntl is None or folder in _held:
        return
    handle = ExperimentLayout(folder).lock.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"{folder} is in use by a live run ({owner}); wait for it to end, or choose another "
                        "--name") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    _held[folder] = handle
