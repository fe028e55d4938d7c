"""Shared building blocks: normalisation factory, residual block, parameter counting, receptive field.

Follows ``models/networks.py`` of junyanz/pytorch-CycleGAN-and-pix2pix:

- :func:`norm_layer` is the official ``get_norm_layer``: ``"batch"`` is ``BatchNorm2d(affine=True,
  track_running_stats=True)``, ``"instance"`` is ``InstanceNorm2d(affine=False,
  track_running_stats=False)``, ``"none"`` is ``Identity``.
- :func:`conv_bias` is the official ``use_bias`` rule: a conv followed by InstanceNorm has a bias,
  a conv followed by BatchNorm has none (BatchNorm's own shift makes it redundant).
  **Departure:** for ``norm="none"`` the official code also drops the bias (its ``use_bias`` is
  ``norm_layer == InstanceNorm2d``), which leaves bias-free convs with nothing after them to learn
  an offset. Here ``"none"`` keeps the bias. The reference parameter counts (instance / batch) are
  unaffected.
- :class:`ResnetBlock` is the official ``ResnetBlock`` (``build_conv_block`` + ``x + block(x)``).

:func:`batchnorm_statistics` chooses which statistics BatchNorm layers normalise with at inference
(running averages, the batch's, or each image's own), for methods whose official code translates in
training mode (OST's MNIST code never calls ``.eval()``).

:func:`count_params` and :func:`receptive_field` are small analysis helpers (not in the official
code) used by tests and by reports.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Union

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "instance", "none")
PADDINGS = ("reflect", "replicate", "zero")

NormArg = Union[str, Callable[[int], nn.Module]]


def norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """Return a callable ``f(num_channels) -> nn.Module`` building the named 2-D norm layer.

    ``"batch"``: ``BatchNorm2d`` (affine, running statistics). ``"instance"``: ``InstanceNorm2d``
    without affine parameters or running statistics (as the official code). ``"none"``: ``Identity``.
    Any other value raises :class:`ValueError` naming it.
    """
    if norm == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    if norm == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    if norm == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(map(repr, NORMS))}")


BN_STATISTICS = ("running", "batch", "sample")


@contextmanager
def batchnorm_statistics(module: nn.Module, mode: str = "running") -> Iterator[None]:
    """Inside the block, every BatchNorm layer of ``module`` normalises with ``mode`` statistics:

    - ``"running"``: whatever the layer's mode says (eval mode: the running averages; PyTorch's usual);
    - ``"batch"``: the statistics of the batch it sees (a training-mode forward), the running
      averages left untouched;
    - ``"sample"``: each image's own statistics (a training-mode forward of a batch of one, i.e.
      instance normalisation with the layer's affine parameters), so an output does not depend on
      the other images of the batch.
    """
    if mode not in BN_STATISTICS:
        raise ValueError(f"unknown BatchNorm statistics {mode!r}; expected one of {', '.join(BN_STATISTICS)}")
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if mode == "running" or not layers:
        yield
        return

    def forward(layer, x):
        if mode == "sample":
            return F.instance_norm(x, weight=layer.weight, bias=layer.bias, use_input_stats=True, eps=layer.eps)
        return F.batch_norm(x, None, None, layer.weight, layer.bias, training=True, eps=layer.eps)

    previous = [layer.__dict__.get("forward") for layer in layers]  # nested blocks: the inner one wins
    for layer in layers:
        layer.forward = forward.__get__(layer)  # an instance attribute shadows the class's forward
    try:
        yield
    finally:
        for layer, prev in zip(layers, previous):
            if prev is None:
                del layer.forward
            else:
                layer.forward = prev


def _check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(map(repr, NORMS))}")
    return norm


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` gets a bias: every norm but ``"batch"`` (see module doc)."""
    return _check_norm(norm) != "batch"


def _pad(padding_type: str) -> tuple[list[nn.Module], int]:
    """Explicit padding layer(s) and the conv's own zero padding for a 3x3 conv."""
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    if padding_type == "zero":
        return [], 1
    raise ValueError(
        f"unknown padding_type {padding_type!r}; expected one of {', '.join(map(repr, PADDINGS))}"
    )


class ResnetBlock(nn.Module):
    """Residual block ``x + conv_block(x)`` (official ``ResnetBlock``).

    ``conv_block``: pad 1, 3x3 conv, norm, ReLU, [Dropout(0.5)], pad 1, 3x3 conv, norm.
    ``norm`` is a name accepted by :func:`norm_layer`; ``use_bias`` sets the bias of both convs
    (the generators pass :func:`conv_bias` of their norm).
    """

    def __init__(
        self,
        dim: int,
        padding_type: str = "reflect",
        norm: str = "instance",
        use_dropout: bool = False,
        use_bias: bool = True,
    ) -> None:
        super().__init__()
        make_norm = norm_layer(norm)
        layers: list[nn.Module] = []
        pad, p = _pad(padding_type)
        layers += pad + [
            nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias),
            make_norm(dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        pad, p = _pad(padding_type)
        layers += pad + [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (all of them, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def receptive_field(
    net: nn.Module,
    in_ch: int = 3,
    size: int = 256,
    out_index: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """Measure the receptive field of one output pixel of ``net`` by back-propagation.

    Feeds a random ``(1, in_ch, size, size)`` input in float64, back-propagates from output pixel
    ``out_index`` (default: the centre of the output map, channel 0) and returns the height and width
    of the bounding box of input pixels with a non-zero gradient. The net is copied, so ``net`` is
    left as it was. Nets with instance norm (or batch norm in training mode) mix statistics over the
    whole image, so every output pixel depends on every input pixel; measure those nets with
    ``norm="none"`` or in eval mode.
    """
    import copy

    probe = copy.deepcopy(net).double()
    x = torch.randn(1, in_ch, size, size, dtype=torch.float64, requires_grad=True)
    y = probe(x)
    if out_index is None:
        out_index = (y.shape[-2] // 2, y.shape[-1] // 2)
    y[0, 0, out_index[0], out_index[1]].backward()
    nz = (x.grad[0].abs().sum(0) != 0).nonzero()
    if nz.numel() == 0:
        return (0, 0)
    h = int(nz[:, 0].max() - nz[:, 0].min() + 1)
    w = int(nz[:, 1].max() - nz[:, 1].min() + 1)
    return (h, w)
