"""Gradient reversal (Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015).

The identity in the forward pass; in the backward pass the incoming gradient is multiplied by
``-scale``. Put between a feature extractor and a domain classifier, one backward pass of the
classifier's loss trains the classifier to tell the domains apart and the extractor to make them
indistinguishable (XGAN's L_dann). :func:`grad_reverse` is the function, :class:`GradReverse` the
module (its ``scale`` can change during training), :func:`dann_lambda` DANN's ramp
``2 / (1 + exp(-gamma p)) - 1`` of the scale over training progress ``p`` in [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = float(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.neg() * ctx.scale, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``x`` unchanged; its gradient is multiplied by ``-scale`` on the way back."""
    if scale < 0:
        raise ValueError(f"gradient reversal scale must be >= 0, got {scale}")
    return _GradReverse.apply(x, scale)


class GradReverse(nn.Module):
    """Module form of :func:`grad_reverse`; ``scale`` is a plain attribute (no parameter)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """DANN's schedule of the reversal scale: 0 at the start, towards 1 at the end of training."""
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0
