"""Weight initialisation, following ``init_weights`` in ``models/networks.py`` of
junyanz/pytorch-CycleGAN-and-pix2pix.

For every conv (``Conv*d`` and ``ConvTranspose*d``) and ``Linear`` layer:

===============  ==============================================
``init_type``    weight
===============  ==============================================
``"normal"``     ``normal_(0, init_gain)``
``"xavier"``     ``xavier_normal_(gain=init_gain)``
``"kaiming"``    ``kaiming_normal_(a=0, mode="fan_in")`` (gain unused, as the official code)
``"orthogonal"`` ``orthogonal_(gain=init_gain)``
===============  ==============================================

and the bias, if any, is set to 0. ``BatchNorm2d`` (and ``SyncBatchNorm``): weight
``normal_(1.0, init_gain)``, bias 0. InstanceNorm without affine parameters has nothing to
initialise. ``init_type="none"`` (not in the official code) keeps PyTorch's default initialisation.

The official code matches layers by class name (``"Conv"``/``"Linear"``/``"BatchNorm2d"`` in the
name); here layers are matched with ``isinstance``, which gives the same result for every layer in
``lit_i2i.nets`` and does not catch unrelated custom modules whose names merely contain "Conv".
"""

from __future__ import annotations

from torch import nn
from torch.nn import init

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal", "none")


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02,
                 zero_bias: bool = True) -> nn.Module:
    """Initialise ``net`` in place as the official ``init_weights`` does; returns ``net``.

    ``zero_bias=False`` leaves conv/linear biases at PyTorch's default initialisation (UNIT
    ``version_02``'s ``gaussian_weights_init`` sets the conv weights only)."""
    if init_type not in INIT_TYPES:
        raise ValueError(
            f"unknown init_type {init_type!r}; expected one of {', '.join(map(repr, INIT_TYPES))}"
        )
    if init_type == "none":
        return net

    def init_func(m: nn.Module) -> None:
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m.weight is not None:
            if init_type == "normal":
                init.normal_(m.weight.data, 0.0, init_gain)
            elif init_type == "xavier":
                init.xavier_normal_(m.weight.data, gain=init_gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(m.weight.data, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                init.orthogonal_(m.weight.data, gain=init_gain)
            if m.bias is not None and zero_bias:
                init.constant_(m.bias.data, 0.0)
        elif isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm)) and m.weight is not None:
            init.normal_(m.weight.data, 1.0, init_gain)
            init.constant_(m.bias.data, 0.0)

    net.apply(init_func)
    return net


def reinit(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Make ``net`` freshly initialised, in place (its parameter objects stay, so optimizers keep
    them): every layer's own ``reset_parameters`` (BatchNorm running statistics included), then
    :func:`init_weights` (``"none"``: PyTorch's default initialisation, as a new net has)."""
    for m in net.modules():
        if m is not net and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return init_weights(net, init_type, init_gain)
