"""Speed options of a run, all off by default: ``--fast.channels_last``, ``--fast.compile``,
``--fast.fused_optimizers`` (and Lightning's own ``--trainer.precision bf16-mixed`` and
``--trainer.benchmark true`` for cuDNN's autotuner on fixed-size inputs).

They are a callback (:class:`FastPaths`) so that every method gets them without code of its own:

  - ``channels_last``: every network's parameters and every 4-D image tensor of each training batch
    in the NHWC memory format (convolutions on tensor cores prefer it; results equal to float
    rounding);
  - ``compile``: ``torch.compile`` of each network (every direct child module of the LightningModule
    that has parameters, the EMA copies aside) in place (``nn.Module.compile``: the state-dict keys,
    hence the checkpoints, stay the same), inside the methods' manual optimization loops; a method
    that calls a network's sub-module directly (``G.encode(x)``) runs that part uncompiled;
  - ``fused_optimizers``: every optimizer whose class has a fused kernel (Adam, AdamW, SGD) rebuilt
    with ``fused=True`` (one kernel for all parameters; CUDA, and CPU since torch 2.4); others
    (RMSprop: TUNIT) keep the default ``foreach`` path, said once.

They change numbers only at float rounding, except compile, whose kernels may reorder reductions.
``lit-i2i bench train --variants`` measures each (``lit_i2i.bench.train``).
"""

from __future__ import annotations

import inspect

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import nn

from lit_i2i.errors import UserError


def networks(pl_module: nn.Module) -> dict[str, nn.Module]:
    """The networks of a method: its direct child modules that hold parameters (the EMA copies,
    ``ema``, aside)."""
    return {name: m for name, m in pl_module.named_children()
            if name != "ema" and any(True for _ in m.parameters())}


def to_channels_last(batch) -> None:
    """Every 4-D floating tensor of a batch dict (or list) in channels-last format, in place."""
    items = batch.items() if isinstance(batch, dict) else enumerate(batch) if isinstance(batch, list) else ()
    for k, v in list(items):
        if torch.is_tensor(v) and v.ndim == 4 and v.is_floating_point():
            batch[k] = v.contiguous(memory_format=torch.channels_last)


def fused(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """``opt`` rebuilt with ``fused=True`` (same parameter groups and options; a fresh state), or
    ``opt`` itself when its class has no fused kernel."""
    if "fused" not in inspect.signature(type(opt)).parameters:
        return opt
    groups = [{**g, "fused": True, "foreach": None} for g in opt.param_groups]
    return type(opt)(groups, **{**opt.defaults, "fused": True, "foreach": None})


class FastPaths(pl.Callback):
    """The speed options of ``lit-i2i fit`` (``--fast.*``; see the module docstring).

    Args:
        channels_last: networks and batch images in the channels-last memory format.
        compile: ``torch.compile`` each network in place.
        compile_backend: torch.compile's backend (``inductor``; ``aot_eager`` or ``eager`` to check
            the wiring without a C++ compiler).
        compile_mode: torch.compile's mode (``default``, ``reduce-overhead``, ``max-autotune``).
        fused_optimizers: Adam/AdamW/SGD with their fused kernels.
    """

    def __init__(self, channels_last: bool = False, compile: bool = False, compile_backend: str = "inductor",
                 compile_mode: str | None = None, fused_optimizers: bool = False):
        super().__init__()
        self.channels_last, self.compile = channels_last, compile
        self.compile_backend, self.compile_mode = compile_backend, compile_mode
        self.fused_optimizers = fused_optimizers

    def setup(self, trainer, pl_module, stage) -> None:
        apply_fast_paths(pl_module, self.channels_last, self.compile, self.compile_backend, self.compile_mode,
                         self.fused_optimizers)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.channels_last:
            to_channels_last(batch)


def apply_fast_paths(pl_module: nn.Module, channels_last: bool = False, compile: bool = False,
                     compile_backend: str = "inductor", compile_mode: str | None = None,
                     fused_optimizers: bool = False) -> None:
    """The module-side part of :class:`FastPaths` (also used by the bench's bare loop). Called before
    the optimizers are built: ``fused_optimizers`` is read by ``TranslationModule.configure_optimizers``."""
    pl_module._fused_optimizers = bool(fused_optimizers)
    if channels_last:
        pl_module.to(memory_format=torch.channels_last)
    if compile:
        if compile_mode not in (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"):
            raise UserError(f"fast.compile_mode: unknown mode {compile_mode!r}; choose default, reduce-overhead, "
                            "max-autotune or max-autotune-no-cudagraphs")
        nets = networks(pl_module)
        for m in nets.values():
            m.compile(backend=compile_backend, mode=compile_mode)
        rank_zero_info(f"fast: torch.compile ({compile_backend}) of {', '.join(nets)}")
