"""A method's own training step in a plain PyTorch loop: what ``lit-i2i bench train --compare bare``
measures the Trainer against.

:class:`BareLoop` runs the method's hooks and ``training_step`` exactly as the Trainer calls them for
one device (``setup``, ``configure_optimizers``, ``on_fit_start``, ``on_train_start``, per batch
``on_train_batch_start`` / ``training_step`` / ``end_of_batch``, ``on_train_epoch_end``), with the
same nets, losses and optimizer steps, but without the Trainer: the plain optimizers instead of
Lightning's wrappers, ``loss.backward()`` instead of the strategy's, no logging (``self.log`` is a
no-op), no progress bar, no callbacks, no checkpointing. The method code is not copied: the loop is
generic, and the few Trainer attributes the methods read (``should_stop``, ``datamodule``,
``train_dataloader``, ``strategy.broadcast``) come from a small stand-in.

``bf16-mixed`` runs ``training_step`` under ``torch.autocast`` as Lightning's precision plugin does;
``16-mixed`` (a gradient scaler) is not offered here.
"""

from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace

import torch

from lit_i2i.core.fast import to_channels_last
from lit_i2i.errors import UserError


def move(batch, device: torch.device):
    """A batch (dict / list / tensor) on ``device``, as Lightning's ``transfer_batch_to_device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move(v, device) for v in batch)
    return batch


class _Strategy:
    """What the methods (and LightningModule's helpers) read of ``trainer.strategy``."""

    def __init__(self, device: torch.device, optimizers: list):
        self.root_device = device
        self._lightning_optimizers = optimizers  # LightningModule.optimizers() returns these, unwrapped

    @staticmethod
    def backward(loss, optimizer, *args, **kwargs):  # LightningModule.manual_backward
        loss.backward(*args, **kwargs)

    @staticmethod
    def broadcast(obj, src: int = 0):
        return obj

    @staticmethod
    def barrier(*args, **kwargs):
        return None


def _clip(optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if gradient_clip_val:
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)


class BareLoop:
    """``model`` trained on ``loader`` by hand (see the module docstring); ``run(n)`` does n batches."""

    def __init__(self, model, datamodule, device: str | torch.device = "cpu", precision: str = "32-true",
                 channels_last: bool = False):
        if precision not in ("32-true", "32", "bf16-mixed"):
            raise UserError(f"--compare bare: precision {precision!r} is not offered by the bare loop "
                            "(32-true or bf16-mixed)")
        self.device = torch.device(device)
        self.model, self.dm = model, datamodule
        self.autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if precision == "bf16-mixed"
                         else contextlib.nullcontext())
        self.channels_last = channels_last
        self.batches = 0
        self._started = False

    def start(self) -> None:
        m, dm = self.model, self.dm
        if hasattr(dm, "prepare_data"):
            dm.prepare_data()
        dm.setup("fit")
        self.loader = dm.train_dataloader()
        m.setup("fit")
        m.to(self.device)
        out = m.configure_optimizers()
        opts, scheds = (out if isinstance(out, tuple) else (out, []))
        opts = list(opts) if isinstance(opts, (list, tuple)) else [opts]
        scheds = [s for s in (scheds if isinstance(scheds, (list, tuple)) else [scheds]) if s is not None]
        self.trainer = SimpleNamespace(
            should_stop=False, datamodule=dm, train_dataloader=self.loader, is_global_zero=True, global_rank=0,
            world_size=1, log_every_n_steps=50, global_step=0, current_epoch=0, optimizers=opts,
            num_training_batches=len(self.loader),
            lr_scheduler_configs=[SimpleNamespace(scheduler=s) for s in scheds], strategy=_Strategy(self.device, opts),
            gradient_clip_val=None, sanity_checking=False, training=True)
        m._trainer = self.trainer  # the stand-in; LightningModule.trainer returns it
        m.log = lambda *a, **k: None
        m.log_dict = lambda *a, **k: None
        m.clip_gradients = _clip
        m.train()
        m.on_fit_start()
        m.on_train_start()
        self._epoch = iter(self.loader)
        self._in_epoch = 0
        self._started = True

    def run(self, n: int) -> int:
        """``n`` more training batches (fewer if the method stops); returns how many ran."""
        if not self._started:
            self.start()
        m, done = self.model, 0
        while done < n and not self.trainer.should_stop:
            try:
                batch = next(self._epoch)
            except StopIteration:
                m.on_train_epoch_end()
                self.trainer.current_epoch += 1
                self._epoch = iter(self.loader)
                self._in_epoch = 0
                continue
            batch = move(batch, self.device)
            if self.channels_last:
                to_channels_last(batch)
            if m.on_train_batch_start(batch, self._in_epoch) == -1:
                break
            with self.autocast:
                m.training_step(batch, self._in_epoch)  # batch_idx: the index within the epoch, as Lightning's
            m.end_of_batch()
            self.batches += 1
            self._in_epoch += 1
            done += 1
        return done

    def timed(self, warmup: int, steps: int) -> float:
        """Batches per second over ``steps`` batches after ``warmup`` untimed ones."""
        self.run(warmup)
        sync(self.device)
        t0 = time.perf_counter()
        n = self.run(steps)
        sync(self.device)
        return n / (time.perf_counter() - t0) if n else float("nan")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
