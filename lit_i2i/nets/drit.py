"""DRIT++ networks: content encoders with a shared last block, attribute encoders, generators, image
and content discriminators.

Follows ``src/networks.py`` of HsinYingLee/DRIT@f19f50a (the DRIT++ code). Official class -> here:

==================  ==========================================================================================
``E_content``       :class:`ContentEncoders`: per domain a reflect-padded 7x7 conv to ``ngf`` (LeakyReLU 0.01, no
                    norm), ``n_down`` reflect-padded 3x3 stride-2 convs doubling the width (InstanceNorm, ReLU),
                    ``n_res`` InstanceNorm residual blocks; then ONE shared residual block (``shared``: a single
                    module, the same tensors for both domains) and, in training mode, additive N(0, I) noise
                    (``GaussianNoiseLayer``).
``E_attr_concat``   :class:`AttributeEncodersConcat` (``concat: true``, the default): a reflect-padded 4x4
                    stride-2 conv to ``ndf``, ``n_blocks - 1`` ``BasicBlock`` s (pre-activation LeakyReLU 0.2,
                    3x3 conv, LeakyReLU 0.2, 3x3 conv + 2x2 average pool, plus a pooled 1x1 shortcut) to
                    ndf x min(4, n + 1), LeakyReLU 0.2, global average pool, and two linear heads: mu and logvar (nz).
``E_attr``          :class:`AttributeEncoders` (``concat: false``): 7x7 conv to ``dim``, four 4x4 stride-2 convs
                    (dim -> 2dim -> 4dim -> 4dim -> 4dim, ReLU, reflect padding), global average pool, 1x1 conv
                    to nz: a deterministic code.
``G_concat``        :class:`ConcatGenerators`: one SHARED residual block (the generators' first layer), then per
                    domain: the attribute code tiled and concatenated, ``n_res`` residual blocks at width
                    C + nz, ``n_up`` x [code concatenated, 3x3 stride-2 transposed conv halving the width,
                    LayerNorm, ReLU], code concatenated, 1x1 transposed conv, tanh.
``G``               :class:`FeatureWiseGenerators` (``concat: false``): per domain (nothing shared) an MLP
                    nz -> 256 -> 256 -> n_res x C and ``n_res`` ``MisINSResBlock`` s (each conv + InstanceNorm is
                    followed by two 1x1 convs on [features, tiled code chunk]), then 2 transposed convs with
                    LayerNorm + ReLU, a 1x1 transposed conv and tanh.
``MultiScaleDis``   :func:`image_discriminator` with ``n_scale > 1``: the suite's
                    :class:`~lit_i2i.nets.vae.MultiScaleDiscriminator` (3x3 stride-2 average pooling, padding
                    excluded, between scales) over :func:`dis_net` (``n_layer`` reflect-padded 4x4 stride-2
                    convs from 64 channels, doubling, LeakyReLU 0.01, then a 1x1 conv to a logit map).
``Dis``             :func:`image_discriminator` with ``n_scale == 1``: six 3x3 stride-2 convs (LeakyReLU 0.01),
                    a 1x1 conv.
``Dis_content``     :class:`ContentDiscriminator`: ``n_down`` reflect-padded (1) 7x7 stride-2 convs on the
                    content code (LeakyReLU 0.01), a 4x4 valid conv, LeakyReLU, a 1x1 conv to one logit per
                    location (one per image at the official 216 crop: 54 -> 25 -> 11 -> 4 -> 1).
==================  ==========================================================================================

Reused suite blocks (the same function): ``INSResBlock`` is :class:`~lit_i2i.nets.blocks.ResnetBlock`
(reflect padding, InstanceNorm without affine, biases); DRIT's ``LayerNorm`` (``F.layer_norm`` over
C, H, W with a per-channel scale and shift) is ``nn.GroupNorm(1, C)``, which computes exactly that.

Initialisation as ``gaussian_weights_init`` (:func:`gaussian_init_`): every conv and transposed-conv
weight N(0, 0.02); biases and the linear layers keep PyTorch's defaults; LayerNorm scale 1, shift 0.

Departures (function-preserving unless said):
  - The official ``LeakyReLUConv2d`` tests ``if 'norm' == 'Instance'`` (a string literal), so it never
    adds its InstanceNorm: ``Dis_content`` (which asks for it) and ``--dis_norm Instance`` run without
    norm. Here that is the default (``ContentDiscriminator(norm=False)``; ``dis_norm`` is not an option);
    ``norm=True`` gives the evident intent. Neither has parameters.
  - Spectral norm (``--dis_spectral_norm``, off by default) is ``torch.nn.utils.parametrizations.spectral_norm``
    (one power iteration), not the copy of PyTorch 0.5's code in ``networks.py``.
  - Widths, depths and kernel sizes are arguments (the official values are the defaults) so that 32x32
    images fit: at 32x32 the content code is 8x8 and the official content discriminator's 7x7 convs do not fit.
  - ``inplace`` activations are not in-place; ``MisINSResBlock``'s unused dropout wrapper is not kept,
    and its residual is added out of place: the official ``out += residual`` modifies a ReLU output
    that current autograd needs, so ``--concat 0`` fails in its first backward on PyTorch 2.x.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from .blocks import ResnetBlock
from .vae import MultiScaleDiscriminator


def gaussian_init_(net: nn.Module, std: float = 0.02) -> nn.Module:
    """DRIT's ``gaussian_weights_init``: conv / transposed-conv weights N(0, std), nothing else."""
    for m in net.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            w = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            nn.init.normal_(w.data, 0.0, std)
    return net


def _sn(layer: nn.Module, sn: bool) -> nn.Module:
    return spectral_norm(layer, n_power_iterations=1) if sn else layer


def lrelu_conv(c_in: int, c_out: int, k: int, s: int, p: int, sn: bool = False, norm: bool = False) -> list[nn.Module]:
    """``LeakyReLUConv2d``: reflection pad, conv (bias), [InstanceNorm], LeakyReLU 0.01."""
    return [nn.ReflectionPad2d(p), _sn(nn.Conv2d(c_in, c_out, k, s, 0), sn),
            *([nn.InstanceNorm2d(c_out)] if norm else []), nn.LeakyReLU(0.01)]


def in_res_block(dim: int) -> ResnetBlock:
    """``INSResBlock``: x + [pad, 3x3 conv, IN, ReLU, pad, 3x3 conv, IN](x)."""
    return ResnetBlock(dim, padding_type="reflect", norm="instance", use_dropout=False, use_bias=True)


def up_block(c_in: int, c_out: int) -> list[nn.Module]:
    """``ReLUINSConvTranspose2d``: 3x3 stride-2 transposed conv (output padding 1), LayerNorm, ReLU."""
    return [nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1), nn.GroupNorm(1, c_out), nn.ReLU()]


def tile(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The code (N, nz) broadcast over ``like``'s spatial size, concatenated to it."""
    return torch.cat([like, z[:, :, None, None].expand(-1, -1, *like.shape[-2:])], 1)


class _Pair(nn.Module):
    """Per-domain parts ``A`` and ``B``; ``part(domain)`` picks one."""

    def part(self, domain: str) -> nn.Module:
        if domain not in ("A", "B"):
            raise ValueError(f"domain must be 'A' or 'B', got {domain!r}")
        return self.A if domain == "A" else self.B


# ----------------------------------------------------------------------------------------- encoders
class ContentEncoders(_Pair):
    def __init__(self, a_ch: int = 3, b_ch: int = 3, ngf: int = 64, n_down: int = 2, n_res: int = 3):
        super().__init__()
        self.out_channels = ngf * 2 ** n_down
        self.A, self.B = self._front(a_ch, ngf, n_down, n_res), self._front(b_ch, ngf, n_down, n_res)
        self.shared = in_res_block(self.out_channels)

    @staticmethod
    def _front(in_ch: int, ngf: int, n_down: int, n_res: int) -> nn.Sequential:
        layers, c = lrelu_conv(in_ch, ngf, 7, 1, 3), ngf
        for _ in range(n_down):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(c, c * 2, 3, 2, 0), nn.InstanceNorm2d(c * 2), nn.ReLU()]
            c *= 2
        return nn.Sequential(*layers, *[in_res_block(c) for _ in range(n_res)])

    def forward(self, x: torch.Tensor, domain: str = "A", noise: bool | None = None) -> torch.Tensor:
        """The content code of ``x`` (a ``domain`` image); N(0, I) noise added when ``noise`` (default:
        in training mode, as ``GaussianNoiseLayer``)."""
        h = self.shared(self.part(domain)(x))
        if self.training if noise is None else noise:
            h = h + torch.randn_like(h)
        return h


class _BasicBlock(nn.Module):
    """``BasicBlock`` (no norm): [LReLU, 3x3 conv, LReLU, 3x3 conv, avgpool 2](x) + conv1x1(avgpool 2(x))."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Sequential(nn.LeakyReLU(0.2), nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_in, 3),
                                  nn.LeakyReLU(0.2), nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3),
                                  nn.AvgPool2d(2, 2))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.shortcut(x)


class _VAEHead(nn.Module):
    def __init__(self, in_ch: int, ndf: int, n_blocks: int, max_mult: int, nz: int):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, ndf, 4, 2, 0)]
        c = ndf
        for n in range(1, n_blocks):
            c = ndf * min(max_mult, n + 1)
            layers.append(_BasicBlock(ndf * min(max_mult, n), c))
        self.conv = nn.Sequential(*layers, nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc, self.fc_var = nn.Linear(c, nz), nn.Linear(c, nz)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x)
        return self.fc(h), self.fc_var(h)


class AttributeEncodersConcat(_Pair):
    """``forward(x, domain)`` -> (mu, logvar), each (N, nz)."""

    variational = True

    def __init__(self, a_ch: int = 3, b_ch: int = 3, nz: int = 8, ndf: int = 64, n_blocks: int = 4, max_mult: int = 4):
        super().__init__()
        self.A, self.B = (_VAEHead(c, ndf, n_blocks, max_mult, nz) for c in (a_ch, b_ch))

    def forward(self, x: torch.Tensor, domain: str = "A") -> tuple[torch.Tensor, torch.Tensor]:
        return self.part(domain)(x)


class AttributeEncoders(_Pair):
    """``forward(x, domain)`` -> the code (N, nz) (no VAE)."""

    variational = False

    def __init__(self, a_ch: int = 3, b_ch: int = 3, nz: int = 8, dim: int = 64):
        super().__init__()
        self.A, self.B = self._net(a_ch, nz, dim), self._net(b_ch, nz, dim)

    @staticmethod
    def _net(in_ch: int, nz: int, dim: int) -> nn.Sequential:
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, dim, 7, 1), nn.ReLU()]
        widths = [dim, dim * 2, dim * 4, dim * 4, dim * 4]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 4, 2), nn.ReLU()]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Conv2d(widths[-1], nz, 1, 1, 0), nn.Flatten())

    def forward(self, x: torch.Tensor, domain: str = "A") -> torch.Tensor:
        return self.part(domain)(x)


# ---------------------------------------------------------------------------------------- generators
class _ConcatDecoder(nn.Module):
    def __init__(self, out_ch: int, ch: int, nz: int, n_res: int, n_up: int):
        super().__init__()
        c = ch + nz
        self.blocks = nn.Sequential(*[in_res_block(c) for _ in range(n_res)])
        ups = []
        for _ in range(n_up):
            ups.append(nn.Sequential(*up_block(c + nz, (c + nz) // 2)))
            c = (c + nz) // 2
        self.ups = nn.ModuleList(ups)
        self.out = nn.Sequential(nn.ConvTranspose2d(c + nz, out_ch, 1, 1, 0), nn.Tanh())

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(tile(z, h))
        for up in self.ups:
            h = up(tile(z, h))
        return self.out(tile(z, h))


class ConcatGenerators(_Pair):
    """``forward(content, z, domain)``; ``shared`` (the first residual block) serves both domains."""

    def __init__(self, a_ch: int = 3, b_ch: int = 3, ch: int = 256, nz: int = 8, n_res: int = 3, n_up: int = 2):
        super().__init__()
        self.shared = in_res_block(ch)
        self.A, self.B = (_ConcatDecoder(c, ch, nz, n_res, n_up) for c in (a_ch, b_ch))

    def forward(self, content: torch.Tensor, z: torch.Tensor, domain: str = "A") -> torch.Tensor:
        return self.part(domain)(self.shared(content), z)


class _MisResBlock(nn.Module):
    """``MisINSResBlock``: x + blk2([conv2(blk1([conv1(x), z])), z]), conv = pad, 3x3 conv, IN;
    blk = 1x1 conv (C + C_z -> C + C_z), ReLU, 1x1 conv (-> C), ReLU."""

    def __init__(self, dim: int, dim_z: int):
        super().__init__()
        def conv():
            return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

        def blk():
            return nn.Sequential(nn.Conv2d(dim + dim_z, dim + dim_z, 1), nn.ReLU(), nn.Conv2d(dim + dim_z, dim, 1), nn.ReLU())
        self.conv1, self.conv2, self.blk1, self.blk2 = conv(), conv(), blk(), blk()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.blk1(tile(z, self.conv1(x)))
        return x + self.blk2(tile(z, self.conv2(h)))


class _FeatureWiseDecoder(nn.Module):
    def __init__(self, out_ch: int, ch: int, nz: int, n_res: int, n_up: int, mlp_dim: int):
        super().__init__()
        self.ch = ch
        self.mlp = nn.Sequential(nn.Linear(nz, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, mlp_dim), nn.ReLU(),
                                 nn.Linear(mlp_dim, ch * n_res))
        self.blocks = nn.ModuleList([_MisResBlock(ch, ch) for _ in range(n_res)])
        layers, c = [], ch
        for _ in range(n_up):
            layers += up_block(c, c // 2)
            c //= 2
        self.up = nn.Sequential(*layers, nn.ConvTranspose2d(c, out_ch, 1, 1, 0), nn.Tanh())

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        for block, zi in zip(self.blocks, self.mlp(z).split(self.ch, 1)):
            h = block(h, zi)
        return self.up(h)


class FeatureWiseGenerators(_Pair):
    """``G`` (``concat: false``): ``forward(content, z, domain)``; no shared layer."""

    def __init__(self, a_ch: int = 3, b_ch: int = 3, ch: int = 256, nz: int = 8, n_res: int = 4, n_up: int = 2,
                 mlp_dim: int = 256):
        super().__init__()
        self.A, self.B = (_FeatureWiseDecoder(c, ch, nz, n_res, n_up, mlp_dim) for c in (a_ch, b_ch))

    def forward(self, content: torch.Tensor, z: torch.Tensor, domain: str = "A") -> torch.Tensor:
        return self.part(domain)(content, z)


# ------------------------------------------------------------------------------------ discriminators
def dis_net(in_ch: int = 3, ndf: int = 64, n_layer: int = 4, sn: bool = False, kernel: int = 4) -> nn.Sequential:
    """One scale of ``MultiScaleDis``: ``n_layer`` x LeakyReLUConv2d(4, 2, 1), then a 1x1 conv to logits;
    ``kernel=3`` is ``Dis`` (``--dis_scale 1``, 6 layers of LeakyReLUConv2d(3, 2, 1))."""
    layers, c = lrelu_conv(in_ch, ndf, kernel, 2, 1, sn), ndf
    for _ in range(1, n_layer):
        layers += lrelu_conv(c, c * 2, kernel, 2, 1, sn)
        c *= 2
    return nn.Sequential(*layers, _sn(nn.Conv2d(c, 1, 1, 1, 0), sn))


def image_discriminator(in_ch: int = 3, n_scale: int = 3, ndf: int = 64, n_layer: int | None = None,
                        sn: bool = False) -> nn.Module:
    """``MultiScaleDis`` (``n_scale > 1``; a list of logit maps; ``n_layer`` default 4) or ``Dis``
    (``n_scale == 1``; one map; ``n_layer`` default 6)."""
    if n_scale > 1:
        return MultiScaleDiscriminator([dis_net(in_ch, ndf, n_layer or 4, sn) for _ in range(n_scale)], "avgpool")
    return dis_net(in_ch, ndf, n_layer or 6, sn, kernel=3)


class ContentDiscriminator(nn.Module):
    """``Dis_content``: logits (N * H' * W',) for content codes."""

    def __init__(self, ch: int = 256, n_down: int = 3, kernel: int = 7, last_kernel: int = 4, norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_down):
            layers += lrelu_conv(ch, ch, kernel, 2, 1, norm=norm)
        layers += lrelu_conv(ch, ch, last_kernel, 1, 0)
        self.model = nn.Sequential(*layers, nn.Conv2d(ch, 1, 1, 1, 0))

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        return self.model(content).reshape(-1)


def kl_attribute(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), SUMMED over the batch and the code (DRIT's ``kl_element``):
    -1/2 sum(1 + logvar - mu^2 - exp(logvar)). In float32."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def l2_regularize(z: torch.Tensor) -> torch.Tensor:
    """DRIT's ``_l2_regularize``: mean(z^2) (the content codes' "KL", and the attribute one without VAE)."""
    return z.float().pow(2).mean()


def mode_seeking_loss(fake1: torch.Tensor, fake2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                      eps: float = 1e-5) -> torch.Tensor:
    """Mode seeking (Mao et al. 2019) as DRIT++: 1 / (mean|G(z2) - G(z1)| / mean|z2 - z1| + eps)."""
    ratio = (fake2.float() - fake1.float()).abs().mean() / (z2.float() - z1.float()).abs().mean()
    return 1.0 / (ratio + eps)


__all__ = ["AttributeEncoders", "AttributeEncodersConcat", "ConcatGenerators", "ContentDiscriminator",
           "ContentEncoders", "FeatureWiseGenerators", "dis_net", "gaussian_init_", "image_discriminator",
           "kl_attribute", "l2_regularize", "mode_seeking_loss", "tile"]
