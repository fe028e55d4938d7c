"""``WandbLogger`` that never crashes or hangs a run because W&B is unreachable.

Mode is decided once, before any W&B call:
  - ``WANDB_MODE`` set (``online``, ``offline``, ``disabled``): respected;
  - ``offline: true`` given: offline;
  - no credentials (no ``WANDB_API_KEY``, no ``api.wandb.ai`` entry in ~/.netrc): offline;
  - credentials but ``api.wandb.ai:443`` not reachable within 3 s: offline.
When it goes offline it prints one line saying where the run is and that ``wandb sync`` uploads it.
Runs are tagged with the method and the dataset by the CLI (see ``lit_i2i.cli``), which also ends the
W&B run before the process exits (wandb's exit-time footer ignores that stderr is not a terminal and
prints colour codes). Lightning's ``anonymous=None`` is not passed on (wandb warns about any value).
"""

from __future__ import annotations

import netrc
import os
import socket
from pathlib import Path

from pytorch_lightning.loggers import WandbLogger as _WandbLogger
from pytorch_lightning.utilities import rank_zero_info


def has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_reachable(host: str = "api.wandb.ai", timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


class WandbLogger(_WandbLogger):
    def __init__(self, project: str = "lit-i2i", name: str | None = None, save_dir: str | None = None,
                 offline: bool | None = None, tags: list[str] | None = None, group: str | None = None,
                 log_model: bool = False, **kwargs):
        env = os.environ.get("WANDB_MODE")
        reason = None
        if env:
            offline = env in ("offline", "dryrun") if offline is None else offline
            if env == "disabled":
                kwargs["mode"] = "disabled"
        elif offline is None:
            if not has_wandb_credentials():
                offline, reason = True, "no W&B credentials (WANDB_API_KEY or `wandb login`)"
            elif not wandb_reachable():
                offline, reason = True, "api.wandb.ai is not reachable"
            else:
                offline = False
        save_dir = save_dir or "."
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(project=project, name=name, save_dir=save_dir, offline=bool(offline), tags=tags,
                         group=group, log_model=log_model, **kwargs)
        if self._wandb_init.get("anonymous") is None:  # wandb warns "anonymous setting has no effect" for any value
            self._wandb_init.pop("anonymous", None)
        if offline and env != "disabled":
            why = f" ({reason})" if reason else ""
            rank_zero_info(f"wandb: logging offline{why} to {Path(save_dir).resolve() / 'wandb'}; "
                           f"upload later with `wandb sync {Path(save_dir) / 'wandb'}/offline-run-*`")
