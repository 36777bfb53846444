"""Training state on disk: written atomically, read back without unpickling arbitrary objects.

A results folder may be shared (``--storage`` on a team disk or bucket), so loading a checkpoint must not run
code that someone else put there: ``torch.load(weights_only=True)`` only rebuilds tensors, numbers, strings and
containers, which is all a ``Trainer.state_dict()`` holds.
"""

from __future__ import annotations

from pathlib import Path

import torch

from searchseg.errors import UserError
from searchseg.io_utils import atomic_write


def save_state(state: dict, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict:
    """The dict saved by ``save_state``; one line naming the file if it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except Exception as error:  # noqa: BLE001  bytes reach the unpickler, which fails in many ways (IndexError...)
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise UserError(f"{path} is not a searchseg checkpoint ({reason}); delete it, or start without "
                        "resuming from it") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a searchseg checkpoint (it holds a {type(state).__name__}, not a dict)")
    return state
