"""Content / style translation networks: AdaIN generators with a style MLP, VGG style-and-cluster
encoders, FRN multi-task discriminators.

The family of FUNIT (NVlabs/FUNIT), TUNIT (clovaai/tunit) and StarGAN v2 (clovaai/stargan-v2). The
layouts follow TUNIT's ``models/blocks.py``, ``generator.py``, ``discriminator.py`` and
``guidingNet.py`` (clovaai/tunit@405a77c; the generator blocks there are FUNIT's, the discriminator
StarGAN v2's with FRN); every block is parametrised so that the other two papers can build theirs
from the same pieces.

Blocks
  - :class:`Conv2dBlock`: pad -> conv -> norm -> activation (FUNIT/TUNIT ``Conv2dBlock``); norms
    ``in`` (InstanceNorm2d, no affine, no running statistics), ``bn``, ``adain``, ``none``; paddings
    ``reflect``, ``replicate``, ``zero``.
  - :class:`ResBlock` / :func:`res_blocks`: two 3x3 Conv2dBlocks, ``x + res_scale * residual``
    (TUNIT's ``x + 0.1 * res``, models/blocks.py:38; FUNIT uses ``res_scale=1``).
  - :class:`AdaIN2d`: adaptive instance normalisation whose per-sample scale and shift are *assigned*
    from outside before the forward (:func:`assign_adain_params`, :func:`num_adain_params`), as
    FUNIT/TUNIT do: ``weight`` (the std) and ``bias`` (the mean) come from an MLP on the style code.
    Computed as ``instance_norm(x) * weight + bias`` (eps 1e-5, biased variance): the same function as
    the official ``F.batch_norm`` over a (1, N*C, H*W) view. The official layer's running-statistics
    buffers are never used (its ``F.batch_norm`` runs in training mode on a repeated copy) and are not kept.
  - :class:`FRN`: Filter Response Normalisation with its TLU, ``max(gamma * x / sqrt(mean(x^2) + eps)
    + beta, tau)`` (eps 1e-6).
  - :class:`ActFirstResBlk`: pre-activation residual block with FRN in place of the activations,
    optional 2x average-pool downsampling, a bias-free 1x1 learned shortcut when the widths differ,
    and ``(shortcut + residual) / sqrt(2)``.
  - :class:`MLP`: Linear blocks (``n_blocks`` layers, ``hidden`` wide, ReLU), the last without
    activation: style code -> AdaIN parameters.
  - :class:`LayerNorm` (``Conv2dBlock(norm="ln")``) and :class:`StyleEncoder`: MUNIT's (NVlabs/MUNIT),
    at the end of this file; MUNIT's generator built from these blocks is ``lit_i2i.nets.munit``.

Networks
  - :class:`ContentEncoder`: 7x7 conv, ``n_down`` 4x4 stride-2 convs doubling the width, ``n_res``
    residual blocks (InstanceNorm, ReLU, reflect padding).
  - :class:`AdaINDecoder`: ``n_res`` AdaIN residual blocks, then ``n_up`` x [2x nearest upsample + 5x5
    conv with ``up_norm`` + ReLU] halving the width, then a 7x7 conv and tanh.
  - :class:`AdaINGenerator`: content encoder + AdaIN decoder + MLP (TUNIT's ``Generator``):
    ``forward(x, style)``, ``encode(x)``, ``decode(content, style)``. Widths: ``nf`` (official: 64
    below 256 px, 32 from 256 px), ``n_down = log2(img_size / content_size)`` (official content map
    16 x 16). Kaiming (fan-in) init of every conv and linear weight, zero biases.
  - :class:`VGGGuidingNetwork`: VGG-11 with BatchNorm (64-M-128-M-256-256-M-512-512-M-512-512-M),
    global average pooling, two linear heads: ``style`` (``style_dim``) and ``logits`` (``n_classes``);
    TUNIT's guiding network (its ``moco`` and ``iic`` heads). Kaiming (fan-out) convs, BN 1/0,
    linears N(0, 0.01) with zero biases. ``width`` scales every conv width (1 = the official network).
  - :class:`MultiTaskDiscriminator`: StarGAN v2's multi-task discriminator with FRN (TUNIT's):
    3x3 conv to ``nf`` (64 below 256 px, else 32), ``log2(img_size) - 2`` stages of
    [ActFirstResBlk, ActFirstResBlk with downsampling] doubling the width up to ``max_dim`` (1024),
    then LeakyReLU 0.2, a 4x4 conv, LeakyReLU 0.2 and a 1x1 conv to one logit per domain;
    ``forward(x, y)`` selects the logit of each image's domain ``y`` (``y=None``: all logits). Kaiming
    (fan-in) init, zero biases.

Parameter counts at 128 px, style 128, 10 domains (equal to the official networks; tested):
generator 27,333,763 (content encoder 12,202,112, decoder 13,749,891, MLP 1,381,760 making 4,992
AdaIN values), discriminator 70,935,242, guiding network 9,296,778.

Departures: the AdaIN running-statistics buffers are dropped (never used, see above); ``ReLU`` is not
in-place (the official ``inplace=True`` saves memory only); the networks take ``in_ch`` input
channels (official: 3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PADS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}
VGG_CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def activation(act: str) -> nn.Module | None:
    if act == "relu":
        return nn.ReLU()
    if act == "lrelu":
        return nn.LeakyReLU(0.2)
    if act == "tanh":
        return nn.Tanh()
    if act == "none":
        return None
    raise ValueError(f"unknown activation {act!r}; expected relu, lrelu, tanh or none")


# ------------------------------------------------------------------------------------------- blocks
class AdaIN2d(nn.Module):
    """Instance normalisation whose scale (``weight``) and shift (``bias``), one per sample and
    channel, are assigned before each forward by :func:`assign_adain_params`."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight: torch.Tensor | None = None  # (N, C), assigned
        self.bias: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight is None or self.bias is None:
            raise RuntimeError("AdaIN2d: assign the style's parameters first (assign_adain_params)")
        n, c = x.shape[:2]
        w, b = self.weight.reshape(n, c, 1, 1), self.bias.reshape(n, c, 1, 1)
        return F.instance_norm(x, eps=self.eps) * w + b

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}"


def num_adain_params(module: nn.Module) -> int:
    """AdaIN values the module needs per sample: 2 x channels of every :class:`AdaIN2d`."""
    return sum(2 * m.num_features for m in module.modules() if isinstance(m, AdaIN2d))


def assign_adain_params(params: torch.Tensor | None, module: nn.Module) -> None:
    """Hand (N, num_adain_params) values to the AdaIN layers in module order: for each layer the first
    C columns are its shift (mean), the next C its scale (std), as FUNIT/TUNIT. ``None`` clears them."""
    for m in module.modules():
        if isinstance(m, AdaIN2d):
            if params is None:
                m.weight = m.bias = None
                continue
            c = m.num_features
            m.bias, m.weight = params[:, :c], params[:, c:2 * c]
            params = params[:, 2 * c:]


class FRN(nn.Module):
    """Filter Response Normalisation + TLU (Singh & Krishnan 2020), as TUNIT/StarGAN v2-FRN."""

    def __init__(self, num_features: int, eps: float = 1e-6):
        super().__init__()
        self.tau = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + self.eps)
        return torch.max(self.gamma * x + self.beta, self.tau)


class Conv2dBlock(nn.Module):
    """pad -> conv -> norm -> activation."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int = 1, padding: int = 0,
                 norm: str = "none", act: str = "relu", pad: str = "zero", bias: bool = True):
        super().__init__()
        if pad not in PADS:
            raise ValueError(f"unknown padding {pad!r}; expected one of {', '.join(PADS)}")
        self.pad = PADS[pad](padding)
        self.conv = nn.Conv2d(in_dim, out_dim, kernel, stride, bias=bias)
        if norm == "in":
            self.norm = nn.InstanceNorm2d(out_dim)
        elif norm == "bn":
            self.norm = nn.BatchNorm2d(out_dim)
        elif norm == "adain":
            self.norm = AdaIN2d(out_dim)
        elif norm == "ln":  # MUNIT's LayerNorm (defined below)
            self.norm = LayerNorm(out_dim)
        elif norm == "none":
            self.norm = None
        else:
            raise ValueError(f"unknown norm {norm!r}; expected in, bn, adain, ln or none")
        self.activation = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x)
        return self.activation(x) if self.activation is not None else x


class ResBlock(nn.Module):
    """``x + res_scale * (conv-norm-act -> conv-norm)(x)`` with 3x3 convs."""

    def __init__(self, dim: int, norm: str = "in", act: str = "relu", pad: str = "zero", res_scale: float = 0.1):
        super().__init__()
        self.model = nn.Sequential(Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, act=act, pad=pad),
                                   Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, act="none", pad=pad))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.model(x)


def res_blocks(n: int, dim: int, norm: str, act: str = "relu", pad: str = "reflect", res_scale: float = 0.1) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(dim, norm, act, pad, res_scale) for _ in range(n)])


class ActFirstResBlk(nn.Module):
    """FRN -> conv3x3 -> (avg-pool) -> FRN -> conv3x3, plus a (1x1, avg-pooled) shortcut; / sqrt(2)."""

    def __init__(self, dim_in: int, dim_out: int, downsample: bool = True):
        super().__init__()
        self.norm1, self.norm2 = FRN(dim_in), FRN(dim_in)
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.downsample = downsample
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv1x1 is not None:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.norm1(x))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return self.conv2(self.norm2(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2.0)


class MLP(nn.Module):
    """``n_blocks`` linear layers: in -> hidden (act) -> ... -> out (no activation)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, n_blocks: int = 3, act: str = "relu"):
        super().__init__()
        if n_blocks < 2:
            raise ValueError(f"MLP needs at least 2 layers, got n_blocks={n_blocks}")
        layers: list[nn.Module] = []
        dims = [in_dim] + [hidden] * (n_blocks - 1)
        for a, b in zip(dims, dims[1:]):
            layers.append(nn.Linear(a, b))
            a_ = activation(act)
            if a_ is not None:
                layers.append(a_)
        layers.append(nn.Linear(dims[-1], out_dim))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.reshape(x.shape[0], -1))


def kaiming_init_(net: nn.Module, mode: str = "fan_in") -> nn.Module:
    """Kaiming-normal weights (a=0) for every conv and linear layer, zero biases (FUNIT/TUNIT
    ``weights_init('kaiming')``; StarGAN v2's discriminator init)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0, mode=mode)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


# ------------------------------------------------------------------------------------------- generator
class ContentEncoder(nn.Module):
    def __init__(self, in_ch: int = 3, nf: int = 64, n_down: int = 3, n_res: int = 2, norm: str = "in",
                 act: str = "relu", pad: str = "reflect", res_scale: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = [Conv2dBlock(in_ch, nf, 7, 1, 3, norm=norm, act=act, pad=pad)]
        for _ in range(n_down):
            layers.append(Conv2dBlock(nf, 2 * nf, 4, 2, 1, norm=norm, act=act, pad=pad))
            nf *= 2
        layers.append(res_blocks(n_res, nf, norm, act, pad, res_scale))
        self.model = nn.Sequential(*layers)
        self.out_dim = nf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class AdaINDecoder(nn.Module):
    def __init__(self, nf: int, n_up: int = 3, n_res: int = 2, out_ch: int = 3, res_norm: str = "adain",
                 up_norm: str = "adain", act: str = "relu", pad: str = "reflect", res_scale: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = [res_blocks(n_res, nf, res_norm, act, pad, res_scale)]
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2), Conv2dBlock(nf, nf // 2, 5, 1, 2, norm=up_norm, act=act, pad=pad)]
            nf //= 2
        layers.append(Conv2dBlock(nf, out_ch, 7, 1, 3, norm="none", act="tanh", pad=pad))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def downsamplings(img_size: int, content_size: int) -> int:
    """log2(img_size / content_size), checked to be a whole number >= 0."""
    n = math.log2(img_size / content_size) if img_size > 0 and content_size > 0 else -1
    if n < 0 or n != int(n):
        raise ValueError(f"img_size / content_size must be a power of two (>= 1), got {img_size} / {content_size}")
    return int(n)


class AdaINGenerator(nn.Module):
    """Content encoder + AdaIN decoder whose AdaIN parameters an MLP makes from a style code."""

    def __init__(self, img_size: int = 128, style_dim: int = 128, nf: int | None = None, n_res: int = 2,
                 content_size: int = 16, in_ch: int = 3, out_ch: int = 3, mlp_dim: int = 256, mlp_blocks: int = 3,
                 res_scale: float = 0.1, up_norm: str = "adain"):
        super().__init__()
        nf = nf or (64 if img_size < 256 else 32)
        n_down = downsamplings(img_size, content_size)
        self.cnt_encoder = ContentEncoder(in_ch, nf, n_down, n_res, "in", "relu", "reflect", res_scale)
        self.decoder = AdaINDecoder(self.cnt_encoder.out_dim, n_down, n_res, out_ch, "adain", up_norm, "relu",
                                    "reflect", res_scale)
        self.mlp = MLP(style_dim, num_adain_params(self.decoder), mlp_dim, mlp_blocks, "relu")
        kaiming_init_(self, "fan_in")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnt_encoder(x)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        assign_adain_params(self.mlp(style), self.decoder)
        try:
            return self.decoder(content)
        finally:
            assign_adain_params(None, self.decoder)  # hold no graph (deepcopy/EMA copies stay clean)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), style)


# ------------------------------------------------------------------------------------------- guiding network
def vgg_features(cfg: list, in_ch: int = 3, batch_norm: bool = True, width: float = 1.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = in_ch
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        w = max(1, int(round(v * width)))
        layers.append(nn.Conv2d(c, w, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(w))
        layers.append(nn.ReLU())
        c = w
    seq = nn.Sequential(*layers)
    seq.out_dim = c
    return seq


class VGGGuidingNetwork(nn.Module):
    """VGG-BN features, global average pooling, a style head and a cluster (class-logit) head."""

    def __init__(self, style_dim: int = 128, n_classes: int = 10, in_ch: int = 3, arch: str = "vgg11",
                 width: float = 1.0):
        super().__init__()
        if arch not in VGG_CFG:
            raise ValueError(f"unknown VGG {arch!r}; expected one of {', '.join(VGG_CFG)}")
        self.features = vgg_features(VGG_CFG[arch], in_ch, True, width)
        self.disc = nn.Linear(self.features.out_dim, n_classes)
        self.cont = nn.Linear(self.features.out_dim, style_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"style": (N, style_dim), "logits": (N, n_classes)}`` from one pass of the backbone."""
        h = self.pooled(x)
        return {"style": self.cont(h), "logits": self.disc(h)}

    def style(self, x: torch.Tensor) -> torch.Tensor:
        return self.cont(self.pooled(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.disc(self.pooled(x))


# ------------------------------------------------------------------------------------------- discriminator
class MultiTaskDiscriminator(nn.Module):
    """One real/fake logit per domain; ``forward(x, y)`` picks the logit of each image's domain."""

    def __init__(self, img_size: int = 128, n_domains: int = 10, in_ch: int = 3, nf: int | None = None,
                 max_dim: int = 1024):
        super().__init__()
        dim_in = nf or (64 if img_size < 256 else 32)
        stages = int(math.log2(img_size)) - 2
        if stages < 1 or 2 ** int(math.log2(img_size)) != img_size:
            raise ValueError(f"MultiTaskDiscriminator needs a power-of-two img_size >= 8, got {img_size}")
        blocks: list[nn.Module] = [nn.Conv2d(in_ch, dim_in, 3, 1, 1)]
        dim_out = dim_in
        for _ in range(stages):
            dim_out = min(dim_in * 2, max_dim)
            blocks += [ActFirstResBlk(dim_in, dim_in, downsample=False), ActFirstResBlk(dim_in, dim_out, downsample=True)]
            dim_in = dim_out
        blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2),
                   nn.Conv2d(dim_out, n_domains, 1, 1, 0)]
        self.main = nn.Sequential(*blocks)
        self.n_domains = n_domains
        kaiming_init_(self, "fan_in")

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = self.main(x).reshape(x.shape[0], -1)  # (N, n_domains) for a 4x4 map before the 4x4 conv
        if y is None:
            return out
        return out.gather(1, y.long().reshape(-1, 1).to(out.device)).squeeze(1)


# ------------------------------------------------------------------------------------------- MUNIT / FUNIT pieces
class LayerNorm(nn.Module):
    """MUNIT's LayerNorm (NVlabs/MUNIT networks.py ``LayerNorm``; the norm of its decoder's upsampling
    convs): per sample, ``(x - mean) / (std + eps)`` over all of C, H, W with the *unbiased* std and eps
    added to the std (not ``nn.LayerNorm``'s biased variance under the root), then a per-channel
    affine ``gamma * x + beta`` with gamma ~ U(0, 1) and beta = 0 at init, as the official layer."""

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.affine = num_features, eps, affine
        if affine:
            self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        shape = (-1,) + (1,) * (x.dim() - 1)
        x = (x - flat.mean(1).reshape(shape)) / (flat.std(1).reshape(shape) + self.eps)
        if self.affine:
            aff = (1, -1) + (1,) * (x.dim() - 2)
            x = x * self.gamma.reshape(aff) + self.beta.reshape(aff)
        return x


class StyleEncoder(nn.Module):
    """MUNIT's ``StyleEncoder`` (= FUNIT's ``ClassModelEncoder``): a 7x7 conv to ``nf``, two 4x4
    stride-2 convs doubling the width, ``n_down - 2`` more 4x4 stride-2 convs at that width, global
    average pooling and a 1x1 conv to ``style_dim``; returns (N, style_dim). MUNIT: n_down 4, no norm,
    ReLU, reflect padding."""

    def __init__(self, in_ch: int = 3, nf: int = 64, style_dim: int = 8, n_down: int = 4, norm: str = "none",
                 act: str = "relu", pad: str = "reflect"):
        super().__init__()
        if n_down < 2:
            raise ValueError(f"StyleEncoder needs n_down >= 2 (two width-doubling convs), got {n_down}")
        layers: list[nn.Module] = [Conv2dBlock(in_ch, nf, 7, 1, 3, norm=norm, act=act, pad=pad)]
        for i in range(n_down):
            layers.append(Conv2dBlock(nf, 2 * nf if i < 2 else nf, 4, 2, 1, norm=norm, act=act, pad=pad))
            nf = 2 * nf if i < 2 else nf
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(nf, style_dim, 1, 1, 0)]
        self.model = nn.Sequential(*layers)
        self.out_dim = nf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(1)
