"""Reading checkpoints without running code: every checkpoint the suite reads goes through here.

``torch.load(..., weights_only=True)`` unpickles only tensors and plain data (dict, list, tuple, str,
numbers, ...) plus the types allow-listed with ``torch.serialization.add_safe_globals``. A pickle
that names any other global (a function to call, a class to build) is refused before anything of it
runs. The suite's own checkpoints (``lit-i2i fit``: nets, optimizers, schedulers, EMA, image pools,
RNG states as tensors and numbers, the run's config as plain dicts) need no extra type:
:data:`SAFE_GLOBALS` is empty (the tests load each method's checkpoints with ``weights_only=True``).

Paths that read checkpoints: ``lit-i2i translate`` / ``evaluate`` (:func:`lit_i2i.commands.load_run`:
:func:`load_checkpoint`, then Lightning's ``load_from_checkpoint(..., weights_only=True)``), ``fit /
validate / test --ckpt_path`` (checked here first by the CLI, then loaded by Lightning with the
subcommand's ``weights_only`` forced to True; LightningCLI's own hyper-parameter read uses
``weights_only=True``), and OST's ``init_from`` (``weights_only=True`` in ``methods/ost.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from lit_i2i.errors import UserError

#: Types beyond tensors and plain data that the suite's own checkpoints hold: none.
SAFE_GLOBALS: list = []
if SAFE_GLOBALS:
    torch.serialization.add_safe_globals(SAFE_GLOBALS)


def load_checkpoint(path: str | Path, option: str = "--ckpt", map_location="cpu", mmap: bool = False) -> dict:
    """The checkpoint at ``path`` loaded with ``weights_only=True``; a one-line UserError naming
    ``option`` and the file if it is missing, not a checkpoint, or holds code-running objects. ``mmap``
    maps the tensors from the file instead of reading them (for a look at the bookkeeping only)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{option}: checkpoint not found: {p}" + (" (it is a folder)" if p.is_dir() else ""))
    try:
        state = torch.load(p, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a user error here
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise UserError(f"{option}: refused to load {p}: it holds a Python object ({found.group(1)}) that could "
                            "run code when unpickled; lit-i2i loads checkpoints with weights_only=True (tensors and "
                            "plain data only), as its own checkpoints are written") from None
        raise UserError(f"{option}: not a readable checkpoint: {p} ({type(e).__name__})") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise UserError(f"{option}: {p} is not a Lightning checkpoint (no state_dict inside)")
    return state


def checkpoint_method(state: dict) -> str | None:
    """The model class path a checkpoint was written by (``lit_i2i_config`` or Lightning's hparams)."""
    model = (state.get("lit_i2i_config") or {}).get("model") or {}
    return model.get("class_path") or (state.get("hyper_parameters") or {}).get("_class_path")
