"""Learning-rate schedules, stepped by hand (manual optimization) at epoch or step boundaries.

``linear`` is the reference CycleGAN/pix2pix "lambda" policy: constant for ``n_epochs`` units, then
linear decay over ``n_epochs_decay`` units; the multiplier at unit e (0-based) is
``1 - max(0, e + epoch_count - n_epochs) / (n_epochs_decay + 1)`` with ``epoch_count = 1``, exactly
as ``networks.get_scheduler``. ``step`` multiplies by ``gamma`` every ``step_size`` units;
``cosine`` anneals to 0 over ``n_epochs`` units (the reference's T_max); ``constant`` never changes.
A "unit" is an epoch (``interval: epoch``, the reference) or an optimizer step (``interval: step``,
for short CPU runs measured in steps).
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, StepLR

POLICIES = ("linear", "step", "cosine", "constant")


class _LinearRule:  # a class, not a lambda, so the scheduler pickles and checkpoints cleanly
    def __init__(self, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1):
        self.n_epochs, self.n_epochs_decay, self.epoch_count = n_epochs, n_epochs_decay, epoch_count

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + self.epoch_count - self.n_epochs) / float(self.n_epochs_decay + 1)


def build_scheduler(optimizer: Optimizer, policy: str = "linear", n_epochs: int = 100, n_epochs_decay: int = 100,
                    step_size: int = 50, gamma: float = 0.1) -> LRScheduler:
    if policy == "linear":
        return LambdaLR(optimizer, _LinearRule(n_epochs, n_epochs_decay))
    if policy == "step":
        return StepLR(optimizer, step_size=step_size, gamma=gamma)
    if policy == "cosine":
        return CosineAnnealingLR(optimizer, T_max=n_epochs, eta_min=0)
    if policy == "constant":
        return LambdaLR(optimizer, _Constant())
    raise ValueError(f"lr_policy {policy!r} is not one of {POLICIES}")


class _Constant:
    def __call__(self, epoch: int) -> float:
        return 1.0
