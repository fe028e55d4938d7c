"""``TranslationModule``: the base every method's LightningModule extends.

It owns what the methods share, so that a method file reads like its paper's loss table:
  - manual optimization (``automatic_optimization = False``) with named optimizers and one helper,
    :meth:`step`, that does a toggled zero_grad / backward / (clip) / step for one of them; the
    method calls it in its paper's order (G then D for CycleGAN, D then G for pix2pix and UNIT);
  - learning-rate schedulers built from ``lr_policy`` and stepped by hand at the right boundary
    (epoch end, or every batch with ``lr_interval: step``);
  - an optional generator EMA (``ema_decay``), kept as ``AveragedModel`` copies (so they are in the
    checkpoint) and used by :meth:`translate` when enabled;
  - per-batch bookkeeping in :meth:`end_of_batch` (iteration count, EMA, per-batch LR), run by the
    :class:`BatchBookkeeping` callback so that a checkpoint saved at a batch end includes it;
  - ``iteration``: training batches done so far, a Python int (no device sync to read it inside
    ``training_step``, where it is the 0-based index of the current batch); incremented after each
    batch (:meth:`end_of_batch`) and saved in the checkpoint. Methods with iteration schedules (OST's phases, DiscoGAN's
    curriculum, DualGAN's n_critic) read it; ``trainer.global_step`` counts optimizer steps instead;
  - checkpoint extras: the iteration, image pools and the RNG states (python, numpy, torch, CUDA), so
    that a resumed run continues exactly;
  - ``translate(x, direction, reference=None)``: the one door for evaluation, inference and grids;
  - ``visuals(batch)``: named image tensors for grids;
  - loss logging under the shared names ``train/loss_<term>``.

Subclasses implement :meth:`build_optimizers` (a dict name -> optimizer, in stepping order),
``training_step`` and ``visuals``, and set ``generators`` (direction -> attribute name of the
generator) or override :meth:`translate`.
"""

from __future__ import annotations

import random
import warnings
from contextlib import contextmanager
from typing import Iterable

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lit_i2i.core.pool import ImagePool
from lit_i2i.core.schedules import build_scheduler


@contextmanager
def frozen(*modules: nn.Module):
    """The parameters of ``modules`` need no gradient inside the block (gradients still flow through
    them to their inputs); each parameter's flag is restored after."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def dist_world() -> int:
    """The number of processes of the initialised process group (1 without one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


@torch.no_grad()
def ema_(target: nn.Module, source: nn.Module, beta: float) -> None:
    """Parameters: target = beta target + (1 - beta) source; buffers copied (TUNIT's and FUNIT's
    official ``update_average`` + ``copy_norm_params``; StarGAN v2's ``torch.lerp`` form without
    buffers is ``methods.stargan_v2.lerp_ema_``, kept for its official rounding)."""
    for pt, ps in zip(target.parameters(), source.parameters()):
        pt.copy_(beta * pt + (1.0 - beta) * ps)
    for bt, bs in zip(target.buffers(), source.buffers()):
        bt.copy_(bs)


@contextmanager
def eval_mode(*modules: nn.Module):
    """``modules`` in eval mode inside the block, each back in its own previous mode after."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(modules, was):
            m.train(w)


class BatchBookkeeping(pl.Callback):
    """Calls ``pl_module.end_of_batch()`` after each training batch. A LightningModule's own
    ``on_train_batch_end`` runs *after* every callback's, so a step-based ``ModelCheckpoint`` would
    save the batch before its bookkeeping (iteration count, EMA update, per-batch LR step) and a
    resumed run would lose it; Lightning runs checkpoint callbacks after all others, so this one
    (returned by ``TranslationModule.configure_callbacks``) runs before any save."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pl_module.end_of_batch()


def finish_epoch_end_save(checkpoint: dict) -> None:
    """Mark a checkpoint saved in ``on_train_epoch_end`` as a finished epoch, so that continuing it is exact.

    Such a checkpoint (the CLI's periodic saves: ``save_on_train_epoch_end``) records its epoch as
    processed but not completed. Lightning 2.6 continues a ``max_steps`` run from it as a restart "on
    epoch end": it builds (and drops) a DataLoader iterator for the finished epoch, one draw of the global
    random generator after the checkpoint's random state was restored, runs the epoch-end hooks again
    (the LR scheduler steps twice) and, after an epoch without validation, trains one batch of the next
    epoch as the old one's; every later step then differs from the uninterrupted run. Lightning reads
    ``checkpoint["loops"]`` after this hook, so completing the epoch here gives the path it already
    takes for ``max_epochs`` runs (the next epoch from its first batch). Mid-epoch saves (stopped by a
    signal, the end of training) do not match the pattern and are left alone.
    """
    loops = (checkpoint.get("loops") or {}).get("fit_loop") or {}
    ep = loops.get("epoch_progress")
    try:
        t = ep["total"]
        at_epoch_end = t["ready"] == t["started"] == t["processed"] == t["completed"] + 1
    except (KeyError, TypeError):
        return
    if not at_epoch_end:
        return
    for part in ("total", "current"):
        ep[part]["completed"] = ep[part]["processed"]
    bp = loops.get("epoch_loop.batch_progress")
    if bp:
        bp["current"] = dict.fromkeys(bp["current"], 0)
        bp["is_last_batch"] = False


class TranslationModule(pl.LightningModule):
    #: short method name used for run tags and W&B grouping
    method_name: str = "translation"
    #: direction -> attribute holding the generator used by translate()
    generators: dict[str, str] = {}
    #: directions this method can translate
    directions: tuple[str, ...] = ("AtoB", "BtoA")

    def __init__(self, lr_policy: str = "linear", n_epochs: int = 100, n_epochs_decay: int = 100,
                 lr_interval: str = "epoch", lr_step_size: int = 50, lr_gamma: float = 0.1,
                 ema_decay: float | None = None):
        super().__init__()
        self.automatic_optimization = False
        if lr_interval not in ("epoch", "step"):
            raise ValueError(f"lr_interval must be 'epoch' or 'step', got {lr_interval!r}")
        self.lr_policy, self.n_epochs, self.n_epochs_decay = lr_policy, n_epochs, n_epochs_decay
        self.lr_interval, self.lr_step_size, self.lr_gamma = lr_interval, lr_step_size, lr_gamma
        self.ema_decay = ema_decay
        self.pools: dict[str, ImagePool] = {}
        self.opt_names: list[str] = []
        self.ema = nn.ModuleDict()
        self.iteration = 0  # training batches done (see the module docstring)

    # ------------------------------------------------------------------ setup
    def setup_ema(self) -> None:
        """Call at the end of a subclass __init__, once its generators exist."""
        if self.ema_decay:
            for name in sorted(set(self.generators.values())):
                self.ema[name] = AveragedModel(getattr(self, name), multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay),
                                               use_buffers=True)
                self.ema[name].requires_grad_(False)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:  # pragma: no cover - abstract
        raise NotImplementedError

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """:meth:`build_optimizers`, with the fused kernels where ``--fast.fused_optimizers`` asks
        for them (``lit_i2i.core.fast``); sets ``opt_names``. Every ``configure_optimizers`` uses it."""
        opts = self.build_optimizers()
        if getattr(self, "_fused_optimizers", False):
            from lit_i2i.core.fast import fused

            opts = {name: fused(o) for name, o in opts.items()}
            plain = sorted({type(o).__name__ for o in opts.values() if not o.defaults.get("fused")})
            if plain:
                warnings.warn(f"fast.fused_optimizers: {', '.join(plain)} has no fused kernel; kept as it is")
        self.opt_names = list(opts)
        return opts

    def configure_optimizers(self):
        opts = self.make_optimizers()
        scheds = [build_scheduler(o, self.lr_policy, self.n_epochs, self.n_epochs_decay, self.lr_step_size,
                                  self.lr_gamma) for o in opts.values()]
        return list(opts.values()), scheds

    def optimizer(self, name: str):
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        return opts[self.opt_names.index(name)]

    # ------------------------------------------------------------------ stepping
    def step(self, name: str, loss: torch.Tensor, clip: float | None = None, zero_fill: bool = False) -> None:
        """One update of optimizer ``name``: only its parameters receive gradients (the others are
        frozen for the backward, as the reference code's ``set_requires_grad(net, False)``).

        ``zero_fill``: parameters of the optimizer that the loss does not reach get a zero gradient
        instead of none, so the optimizer still steps them (Adam: moments decayed, the step count
        advanced, the parameter moved by its momentum). That is what PyTorch before 1.7 did once a
        parameter had had a gradient (``zero_grad`` zeroed in place), which code of that era relies
        on when one optimizer holds two generators and a step's loss reaches only one of them."""
        opt = self.optimizer(name)
        self.toggle_optimizer(opt)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if zero_fill:
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is None and p.requires_grad:
                        p.grad = torch.zeros_like(p)
        if clip is not None:
            self.clip_gradients(opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        opt.step()
        opt.zero_grad(set_to_none=True)  # free the gradients now: the next network's step does not need them
        self.untoggle_optimizer(opt)

    def configure_callbacks(self):
        return [BatchBookkeeping()]

    def end_of_batch(self) -> None:
        """After every training batch (through :class:`BatchBookkeeping`, before any checkpoint of that
        batch is saved): count the iteration, update the EMA, step per-batch LR schedulers."""
        self.iteration += 1
        for name, avg in self.ema.items():
            avg.update_parameters(getattr(self, name))
        if self.lr_interval == "step":
            self._step_schedulers()

    def on_train_epoch_end(self) -> None:
        if self.lr_interval == "epoch":
            self._step_schedulers()

    def _step_schedulers(self) -> None:
        scheds = self.lr_schedulers()
        if scheds is None:
            return
        with warnings.catch_warnings():
            # an optimizer that steps on some iterations only (a G every n_critic-th) has a schedule
            # counted in iterations all the same; PyTorch's "scheduler before optimizer" warning is
            # about the other order of a single optimizer, so it is silenced here
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            for s in scheds if isinstance(scheds, list) else [scheds]:
                s.step()

    def logging_step(self) -> bool:
        """Whether this training batch's logged values reach the logger: Lightning sends ``on_step``
        values on every ``log_every_n_steps``-th batch only (``iteration`` + 1 a multiple of it), so
        values logged on the others only feed the progress bar. The first batch counts as one too
        (short runs and tests see every key)."""
        t = self._trainer
        every = max(1, int(getattr(t, "log_every_n_steps", 1) or 1)) if t is not None else 1
        return self.iteration == 0 or (self.iteration + 1) % every == 0

    def log_losses(self, losses: dict[str, torch.Tensor], prog_bar: Iterable[str] = ("G", "D")) -> None:
        """``train/loss_<term>`` for each term and ``train/lr``, on logging steps only
        (:meth:`logging_step`; the ``prog_bar`` terms also go to the progress bar, which so shows the
        values of the last logging step). Lightning's ``self.log`` costs about half a millisecond a
        call on a CPU (its result bookkeeping copies each value's metadata): logging every term of
        every batch cost the fast methods 5-10% of their step (``lit-i2i bench train --compare bare``),
        for values no logger would receive."""
        if not self.logging_step():
            return
        for k, v in losses.items():
            self.log(f"train/loss_{k}", v.detach(), prog_bar=k in prog_bar, on_step=True, on_epoch=False)
        if self.opt_names:
            self.log("train/lr", self.optimizer(self.opt_names[0]).param_groups[0]["lr"], on_step=True,
                     on_epoch=False)

    # ------------------------------------------------------------------ the one door
    def generator(self, direction: str) -> nn.Module:
        if direction not in self.generators:
            raise ValueError(f"{type(self).__name__} translates {tuple(self.generators)}, not {direction!r}")
        name = self.generators[direction]
        return self.ema[name].module if name in self.ema else getattr(self, name)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None) -> torch.Tensor:
        """Translate a batch ``x`` (float NCHW in [-1, 1]) in ``direction``; EMA weights if enabled."""
        return self.generator(direction)(x)

    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ validation / test / predict
    def validation_step(self, batch, batch_idx):
        """Validation losses are method-specific; metrics come from the TranslationMetrics callback."""

    def test_step(self, batch, batch_idx):
        """Test metrics come from the TranslationMetrics callback."""

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return {"image": self.translate(batch["image"], self.directions[0]), "path": batch["path"]}

    # ------------------------------------------------------------------ exact resume
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["iteration"] = int(self.iteration)
        checkpoint["image_pools"] = {k: p.state_dict() for k, p in self.pools.items()}
        name, keys, pos, has_gauss, cached = np.random.get_state()
        checkpoint["rng_states"] = {  # tensors and plain numbers only: loadable with weights_only=True
            "python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        finish_epoch_end_save(checkpoint)
        self.iteration = int(checkpoint.get("iteration", 0))
        for k, state in checkpoint.get("image_pools", {}).items():
            if k in self.pools:
                self.pools[k].load_state_dict(state, device=self.device)
        rng = checkpoint.get("rng_states")
        if rng:
            random.setstate(rng["python"])
            name, keys, pos, has_gauss, cached = rng["numpy"]
            np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
            torch.set_rng_state(rng["torch"])
            if rng.get("cuda") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])

    # ------------------------------------------------------------------ what the data must match
    def io_channels(self) -> dict[str, tuple[str, int]]:
        """Domain -> (init argument, channel count) of the images the nets take, from the common
        hyper-parameter names (in_ch/out_ch, a_ch/b_ch, the reference code's input_nc/output_nc);
        a domain the method names none of is left out. The CLI checks the data against it."""
        names = {"A": ("in_ch", "a_ch", "input_nc"), "B": ("out_ch", "b_ch", "output_nc")}
        found = {d: next((n for n in ns if n in self.hparams), None) for d, ns in names.items()}
        return {d: (n, int(self.hparams[n])) for d, n in found.items() if n is not None}

