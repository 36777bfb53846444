"""Atomic file writes, so an interrupted run never leaves a half-written result behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from searchseg.errors import UserError

if TYPE_CHECKING:
    import pandas as pd


def _process_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; results are meant to be shared like any file the user
# writes, so they get the permissions the umask gives a new file (0644 under the usual 022).
FILE_MODE = 0o666 & ~_process_umask()


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_png(path: Path, pixels) -> None:
    """An image array (``(H, W)`` or ``(H, W, 3)`` uint8) as a PNG, written atomically."""
    from PIL import Image  # here, not at the top: the report reads tables through this module

    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


def json_default(value: object) -> object:
    """``json.dumps``'s ``default`` for numpy scalars (metrics computed with numpy)."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` if needed; one line naming ``what`` (a flag) when it cannot be created or written."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {folder} ({error.strerror}); choose a writable {what}") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"{folder} is not writable; choose a writable {what}")


def folder_name(name: str, what: str = "--name") -> str:
    """``name`` if it names one folder inside the results folder; one line otherwise, so that a name can never
    write outside it (``../x``) or share Ray's folder with another name (``a/run`` and ``b/run``)."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name or name != name.strip():
        raise UserError(f"{what} {name!r} must be a single folder name (letters, digits, '-', '_', '.'; "
                        "no '/' and not '..')")
    return name


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict:
    """A JSON object searchseg wrote, with ``required`` keys; one line naming the file when it is damaged."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} cannot be read ({str(error).splitlines()[0][:120]}); restore it from a copy, or "
                        "start a new experiment") from None
    missing = [key for key in required if key not in value] if isinstance(value, dict) else list(required)
    if not isinstance(value, dict) or missing:
        raise UserError(f"{path} is not what searchseg wrote (missing {', '.join(missing) or 'an object'}); "
                        "restore it from a copy, or start a new experiment")
    return value


def read_table(path: Path, columns: tuple[str, ...] = (), **read_csv) -> pd.DataFrame:
    """A CSV table searchseg wrote, with ``columns``; one line naming the file when it is damaged.

    Trial ids stay text: Ray's hex ids are sometimes all digits, and a table whose only trial has such an id
    would otherwise hold a number that matches nothing in the other tables.
    """
    import pandas as pd  # here: the commands' --help and argument errors stay fast

    try:
        table = pd.read_csv(path, dtype={"trial_id": str}, **read_csv)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(f"{path} cannot be read as a table ({str(error).splitlines()[0][:120]}); restore it "
                        "from a copy") from None
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise UserError(f"{path} lacks the columns {', '.join(missing)}; restore it from a copy")
    return table
