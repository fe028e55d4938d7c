"""Shared-latent VAE pieces (UNIT, OST): per-domain outer layers around SHARED inner layers, and the
discriminators of the UNIT and OST code.

An encoder is ``E_X = shared ∘ front_X`` and a decoder ``G_X = back_X ∘ shared``: :class:`Encoder`
and :class:`Decoder` hold the two parts as ``.front``/``.shared`` and ``.shared``/``.back``. The
shared part is one ``nn.Module`` *object* registered under both domains (``enc_A.shared is
enc_B.shared``): the same parameter tensors, not tied copies, so every update through either domain
moves both, and ``module.parameters()`` lists them once. Its keys appear twice in a state dict
(``enc_A.shared.*`` and ``enc_B.shared.*``); both load into the same tensors.

:class:`VAESpec` describes the layer plan; three families (``arch``):

==========  ===========================================================================================
``unit``    UNIT ``version_02`` ``COCOResGen2``: 7x7 stride-1 conv to ngf, ``n_down`` 3x3 stride-2
            convs (x2 channels), LeakyReLU 0.01 and no norm on all of them; residual blocks (two 3x3
            convs with ``norm`` (instance), ReLU between, zero padding, identity skip); decoder mirror:
            residual blocks, 3x3 stride-2 transposed convs (output_padding 1) with LeakyReLU 0.01,
            then a 1x1 transposed conv and tanh.
``unit_in`` UNIT ``COCOResGen`` (cat2tiger, corgi2husky): as ``unit`` but the stride-2 convs and the
            transposed convs have ``norm`` + ReLU (the 7x7 input conv keeps LeakyReLU, no norm).
``resnet``  the OST image code / CycleGAN ResNet layout: reflect-padded 7x7 conv, 3x3 stride-2
            convs, ``norm`` + ReLU after each, reflect-padded residual blocks, transposed convs, a
            reflect-padded 7x7 conv and tanh.
``dcgan``   the OST MNIST<->SVHN net (``model.G11``): ``n_down`` 4x4 stride-2 convs (the first from
            the image to ngf), ``norm`` (batch) and LeakyReLU 0.05; ``n_res_shared`` plain 3x3 convs
            (not residual) at the latent on each side; 4x4 stride-2 transposed convs back, the last
            one to the image with tanh. ngf 64, n_down 2, n_unshared 1, n_res_shared 1 is G11:
            unshared conv1 / deconv2, shared conv2, conv3 | conv4, deconv1; latent 128x8x8 at 32x32.
==========  ===========================================================================================

Which layers are shared: the first ``n_unshared`` downsampling levels (plus the input conv of
``unit``/``resnet``) and the ``n_res_unshared`` residual blocks after them are per-domain; the
remaining downsampling levels and ``n_res_shared`` blocks are shared (mirrored in the decoder).
UNIT: ``n_unshared = n_down`` (all convs and 3 blocks per domain, 1 shared block each side). OST:
``n_unshared`` of 0-3 levels, 6 shared blocks in the image code; per-domain residual blocks need
``n_unshared == n_down`` (they sit between the per-domain convs and the shared part).

Departures: UNIT's ``INSResBlock`` puts its optional dropout after the second norm, ``ResnetBlock``
(the CycleGAN block reused here) between the two convs. Every ``dcgan`` conv is bias-free, the output
layer included, as in the official ``G11`` (the parameter counts are the official ones). Gaussian noise
is not a layer here (UNIT's ``GaussianNoiseLayer``): the methods add it to the latent themselves, so
that the KL term and translation can use the noise-free mean.

Discriminators: :class:`UnitDiscriminator` (``COCODis`` net: 3x3 stride-2 convs, LeakyReLU 0.01, a
1x1 conv to a logit map), :class:`MultiScaleDiscriminator` (``COCOMsDis``: one net per scale on the
image blurred by a 3x3 Gaussian and subsampled 2x; or UNIT master's ``MsImageDis``: 3x3 stride-2
average pooling, padding excluded, between scales), :func:`master_dis_net` (master: 4x4 stride-2
reflect-padded convs, LeakyReLU 0.2, no norm, 1x1 conv), :class:`DCGANDiscriminator` (OST ``D1``/``D2``)
and :func:`shared_front_discriminators` (``COCOSharedDis``: per-domain front layers, shared back).
(A ``nets/multiscale.py`` may be the better home for the multi-scale wrapper once other methods need it.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResnetBlock, conv_bias, norm_layer

ARCHS = ("unit", "unit_in", "resnet", "dcgan")


def unique_parameters(*modules: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``modules``, each shared tensor once (an optimizer must not list one twice)."""
    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


class Encoder(nn.Module):
    """``E_X(x) = shared(front(x))``: the latent mean (the methods add the noise)."""

    def __init__(self, front: nn.Module, shared: nn.Module):
        super().__init__()
        self.front, self.shared = front, shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.front(x))


class Decoder(nn.Module):
    """``G_X(z) = back(shared(z))``."""

    def __init__(self, shared: nn.Module, back: nn.Module):
        super().__init__()
        self.shared, self.back = shared, back

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.back(self.shared(z))


@dataclass
class VAESpec:
    """Layer plan of a shared-latent encoder/decoder pair (see the module docstring)."""

    arch: str = "unit"
    ngf: int = 64
    n_down: int = 2
    n_unshared: int | None = None  # downsampling levels per domain (default: all of them)
    n_res_unshared: int = 3
    n_res_shared: int = 1
    norm: str = "instance"
    dropout: float = 0.0

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown VAE arch {self.arch!r}; expected one of {', '.join(ARCHS)}")
        norm_layer(self.norm)  # validates
        if self.n_unshared is None:
            self.n_unshared = self.n_down
        if self.n_down < 1 or not 0 <= self.n_unshared <= self.n_down:
            raise ValueError(f"need n_down >= 1 and 0 <= n_unshared <= n_down, got n_down={self.n_down}, "
                             f"n_unshared={self.n_unshared}")
        if self.arch == "dcgan" and self.n_unshared < 1:
            raise ValueError("arch 'dcgan' needs n_unshared >= 1 (its first conv reads the image)")
        if self.n_res_unshared and self.n_unshared != self.n_down:
            raise ValueError("per-domain residual blocks (n_res_unshared > 0) need n_unshared == n_down")

    # -- channel bookkeeping: level i (0-based) of the encoder maps ch(i) -> ch(i + 1)
    def _ch(self, i: int) -> int:
        if self.arch == "dcgan":
            return self.ngf * 2 ** (i - 1) if i > 0 else -1  # -1: the image
        return self.ngf * 2 ** i

    @property
    def latent_channels(self) -> int:
        return self._ch(self.n_down)

    def downsampling(self) -> int:
        return 2 ** self.n_down

    # -- layers
    def _act(self) -> nn.Module:
        return {"unit": lambda: nn.LeakyReLU(0.01, True), "unit_in": lambda: nn.ReLU(True),
                "resnet": lambda: nn.ReLU(True), "dcgan": lambda: nn.LeakyReLU(0.05, True)}[self.arch]()

    def _norm(self, c: int) -> list[nn.Module]:
        if self.arch == "unit":
            return []  # COCOResGen2: no norm outside the residual blocks
        return [norm_layer(self.norm)(c)]

    def _bias(self) -> bool:
        return True if self.arch in ("unit", "unit_in") else conv_bias(self.norm)

    def _down(self, i: int, in_ch: int) -> list[nn.Module]:
        c_in, c_out = (in_ch if self._ch(i) < 0 else self._ch(i)), self._ch(i + 1)
        k, p = (4, 1) if self.arch == "dcgan" else (3, 1)
        return [nn.Conv2d(c_in, c_out, k, 2, p, bias=self._bias()), *self._norm(c_out), self._act()]

    def _up(self, i: int, out_ch: int) -> list[nn.Module]:
        """Decoder level i: ch(i + 1) -> ch(i) (for dcgan level 0 goes to the image, with tanh)."""
        c_in, c_out = self._ch(i + 1), self._ch(i)
        if self.arch == "dcgan":
            if c_out < 0:  # bias-free like every G11 layer
                return [nn.ConvTranspose2d(c_in, out_ch, 4, 2, 1, bias=False), nn.Tanh()]
            return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=self._bias()), *self._norm(c_out), self._act()]
        return [nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1, bias=self._bias()),
                *self._norm(c_out), self._act()]

    def _block(self, dim: int) -> nn.Module:
        if self.arch == "dcgan":
            return nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1, bias=self._bias()), *self._norm(dim), self._act())
        pad = "reflect" if self.arch == "resnet" else "zero"
        block = ResnetBlock(dim, padding_type=pad, norm=self.norm, use_dropout=False, use_bias=True)
        if self.dropout:
            seq = list(block.conv_block)
            relu = next(i for i, m in enumerate(seq) if isinstance(m, nn.ReLU))
            seq.insert(relu + 1, nn.Dropout(self.dropout))  # after conv, norm, ReLU
            block.conv_block = nn.Sequential(*seq)
        return block

    # -- the four parts
    def front(self, in_ch: int) -> nn.Sequential:
        """Per-domain encoder layers: input conv, the first ``n_unshared`` downsamplings, per-domain blocks."""
        layers: list[nn.Module] = []
        if self.arch in ("unit", "unit_in"):
            layers += [nn.Conv2d(in_ch, self.ngf, 7, 1, 3), nn.LeakyReLU(0.01, True)]
        elif self.arch == "resnet":
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, self.ngf, 7, bias=self._bias()),
                       *self._norm(self.ngf), self._act()]
        for i in range(self.n_unshared):
            layers += self._down(i, in_ch)
        layers += [self._block(self._ch(self.n_unshared)) for _ in range(self.n_res_unshared)]
        return nn.Sequential(*layers)

    def shared_encoder(self) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(self.n_unshared, self.n_down):
            layers += self._down(i, -1)
        layers += [self._block(self.latent_channels) for _ in range(self.n_res_shared)]
        return nn.Sequential(*layers)

    def shared_decoder(self) -> nn.Sequential:
        layers: list[nn.Module] = [self._block(self.latent_channels) for _ in range(self.n_res_shared)]
        for i in reversed(range(self.n_unshared, self.n_down)):
            layers += self._up(i, -1)
        return nn.Sequential(*layers)

    def back(self, out_ch: int) -> nn.Sequential:
        layers: list[nn.Module] = [self._block(self._ch(self.n_unshared)) for _ in range(self.n_res_unshared)]
        for i in reversed(range(self.n_unshared)):
            layers += self._up(i, out_ch)
        if self.arch in ("unit", "unit_in"):
            layers += [nn.ConvTranspose2d(self.ngf, out_ch, 1, 1, 0), nn.Tanh()]
        elif self.arch == "resnet":
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(self.ngf, out_ch, 7), nn.Tanh()]
        return nn.Sequential(*layers)


def shared_latent_vaes(spec: VAESpec, a_ch: int = 3, b_ch: int = 3, share: bool = True
                       ) -> tuple[Encoder, Decoder, Encoder, Decoder]:
    """``(enc_A, dec_A, enc_B, dec_B)``; with ``share`` the inner layers are the same module objects
    (``enc_A.shared is enc_B.shared``, ``dec_A.shared is dec_B.shared``); without (UNIT master) each
    domain gets its own, independently initialised copy of the same layout."""
    enc_s, dec_s = spec.shared_encoder(), spec.shared_decoder()
    enc_s_b, dec_s_b = (enc_s, dec_s) if share else (spec.shared_encoder(), spec.shared_decoder())
    return (Encoder(spec.front(a_ch), enc_s), Decoder(dec_s, spec.back(a_ch)),
            Encoder(spec.front(b_ch), enc_s_b), Decoder(dec_s_b, spec.back(b_ch)))


def copy_matching(src: nn.Module, dst: nn.Module) -> list[str]:
    """Copy every tensor of ``src``'s state into ``dst``'s where name and shape match (in place, so the
    parameter objects an optimizer holds stay the same); returns the names copied."""
    dst_state = dst.state_dict()
    done = []
    with torch.no_grad():
        for k, v in src.state_dict().items():
            if k in dst_state and dst_state[k].shape == v.shape:
                dst_state[k].copy_(v)
                done.append(k)
    return done


# ---------------------------------------------------------------------------------- discriminators
class UnitDiscriminator(nn.Module):
    """UNIT ``COCODis`` net: ``n_layers`` 3x3 stride-2 convs (ndf, x2 each), LeakyReLU 0.01, 1x1 conv to logits."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 4):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 3, 2, 1), nn.LeakyReLU(0.01, True)]
        c = ndf
        for _ in range(1, n_layers):
            layers += [nn.Conv2d(c, c * 2, 3, 2, 1), nn.LeakyReLU(0.01, True)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, 1, 1, 0))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def master_dis_net(in_ch: int = 3, ndf: int = 64, n_layers: int = 4) -> nn.Sequential:
    """UNIT master ``MsImageDis`` single-scale net: 4x4 stride-2 reflect-padded convs, LeakyReLU 0.2, no norm."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1, padding_mode="reflect"), nn.LeakyReLU(0.2, True)]
    c = ndf
    for _ in range(1, n_layers):
        layers += [nn.Conv2d(c, c * 2, 4, 2, 1, padding_mode="reflect"), nn.LeakyReLU(0.2, True)]
        c *= 2
    layers.append(nn.Conv2d(c, 1, 1, 1, 0))
    return nn.Sequential(*layers)


class GaussianDownsample(nn.Module):
    """UNIT ``version_02``: 3x3 Gaussian blur (OpenCV's fixed kernel [1, 2, 1]/4), replicate padding, 2x subsampling."""

    def __init__(self):
        super().__init__()
        k = torch.tensor([0.25, 0.5, 0.25])
        self.register_buffer("kernel", torch.outer(k, k)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel.to(x.dtype).expand(c, 1, 3, 3), groups=c)
        return y[:, :, ::2, ::2]


class MultiScaleDiscriminator(nn.Module):
    """Independent nets on the image at full, 1/2, 1/4, ... scale; returns the list of logit maps
    (``GANLoss`` sums the losses over scales). ``downsample``: ``gaussian`` (version_02 ``COCOMsDis``)
    or ``avgpool`` (master: 3x3 stride-2 average pooling, padding excluded)."""

    def __init__(self, nets: Iterable[nn.Module], downsample: str = "gaussian"):
        super().__init__()
        self.nets = nn.ModuleList(nets)
        if downsample == "gaussian":
            self.down = GaussianDownsample()
        elif downsample == "avgpool":
            self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        else:
            raise ValueError(f"downsample must be 'gaussian' or 'avgpool', got {downsample!r}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, net in enumerate(self.nets):
            if i:
                x = self.down(x)
            outs.append(net(x))
        return outs


class TwoPart(nn.Module):
    """``shared(front(x))`` for discriminators with shared back layers (``COCOSharedDis``)."""

    def __init__(self, front: nn.Module, shared: nn.Module):
        super().__init__()
        self.front, self.shared = front, shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.front(x))


def shared_front_discriminators(a_ch: int = 3, b_ch: int = 3, ndf: int = 64, n_front: int = 2, n_shared: int = 4
                                ) -> tuple[TwoPart, TwoPart]:
    """UNIT ``COCOSharedDis`` (CelebA): per domain a 7x7 stride-2 conv and ``n_front - 1`` 3x3 stride-2
    convs; then ``n_shared`` shared 3x3 stride-2 convs and a shared 1x1 conv (LeakyReLU 0.01 throughout)."""
    def front(in_ch):
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 7, 2, 3), nn.LeakyReLU(0.01, True)]
        c = ndf
        for _ in range(1, n_front):
            layers += [nn.Conv2d(c, c * 2, 3, 2, 1), nn.LeakyReLU(0.01, True)]
            c *= 2
        return nn.Sequential(*layers), c

    fa, c = front(a_ch)
    fb, _ = front(b_ch)
    shared: list[nn.Module] = []
    for _ in range(n_shared):
        shared += [nn.Conv2d(c, c * 2, 3, 2, 1), nn.LeakyReLU(0.01, True)]
        c *= 2
    shared.append(nn.Conv2d(c, 1, 1, 1, 0))
    s = nn.Sequential(*shared)
    return TwoPart(fa, s), TwoPart(fb, s)


class DCGANDiscriminator(nn.Module):
    """OST MNIST code ``D1``/``D2``: 4x4 stride-2 convs ndf (no norm), 2ndf, 4ndf (``norm``), LeakyReLU
    0.05, then a 4x4 valid conv to one logit (1x1 at 32x32; a small map on larger images). Every conv
    is bias-free, as the official ``conv(..., bias=False)`` helper builds them all."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        make_norm = norm_layer(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.05, True)]
        c = ndf
        for _ in range(1, n_layers):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), make_norm(c * 2), nn.LeakyReLU(0.05, True)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, 4, 1, 0, bias=False))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


