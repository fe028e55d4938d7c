"""UNIT's domain-adaptation networks (mingyuliutw/UNIT ``version_02``, ``trainers/cocogan_nets_da.py``):
the coupled VAE generator ``CoVAE32x32`` and the coupled discriminator ``CoDis32x32`` with its digit
classifier head, for 32x32 digits.

``CoVAE32x32`` (``ch`` = gen_ch, 96 in ``exps/unit/svhn2mnist.yaml``): per-domain 5x5 stride-2 conv to
ch; SHARED: 5x5 stride-2 conv to 2ch, 8x8 valid conv to 4ch (1x1), 1x1 conv to 8ch, a Gaussian latent
(1x1 convs to mu and softplus(sd)), transposed convs 8ch -> 8ch (4x4, 1 -> 4), -> 4ch (8), -> 2ch (16);
per-domain transposed conv to ch (32) and a 1x1 transposed conv + tanh to the image. Every hidden
layer is ``LeakyReLUBNNS``: conv (bias) -> BatchNorm without affine -> a separate learned bias
(``Bias2d``, N(0, 0.002)) -> LeakyReLU(0.01). Both domains pass the shared layers as ONE batch (the
official ``torch.cat``), so BatchNorm's statistics are joint.

``CoDis32x32`` (``ch`` = dis_ch, 64): per-domain 5x5 conv (stride 1) + ReLU + 2x2 max-pool to ch;
SHARED: the same to 2ch, 4ch, 8ch (32 -> 2x2); a 2x2 conv to 2 logits (real / fake) and a 2x2 conv to
10 logits (the digit classifier). The adversarial and classifier paths use dropout 0.1 / 0.3 / 0.5 /
0.5 after the four conv stages; the feature path (``h3``, for feature matching) has none.
"""

from __future__ import annotations

import torch
from torch import nn


class Bias2d(nn.Module):
    """A per-channel learned bias after a non-affine BatchNorm (official ``Bias2d``, init N(0, 0.002))."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.empty(channels).normal_(0, 0.002))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias[None, :, None, None]


def bnns(conv: nn.Module, channels: int) -> nn.Sequential:
    """``LeakyReLUBNNSConv2d`` / ``...ConvTranspose2d``: conv -> BN(affine=False) -> Bias2d -> LeakyReLU(0.01)."""
    return nn.Sequential(conv, nn.BatchNorm2d(channels, affine=False), Bias2d(channels), nn.LeakyReLU(0.01, True))


class GaussianLatent(nn.Module):
    """Official ``GaussianVAE2D``: mu and softplus(sd) from 1x1 convs (init N(0, 0.002))."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.en_mu = nn.Conv2d(n_in, n_out, 1)
        self.en_sigma = nn.Conv2d(n_in, n_out, 1)
        for c in (self.en_mu, self.en_sigma):
            nn.init.normal_(c.weight, 0, 0.002)
            nn.init.normal_(c.bias, 0, 0.002)
        self.softplus = nn.Softplus()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.en_mu(x), self.softplus(self.en_sigma(x))


class CoVAE32x32(nn.Module):
    def __init__(self, ch: int = 96, in_a: int = 3, out_a: int = 3, in_b: int = 1, out_b: int = 1):
        super().__init__()
        self.conv0_a = bnns(nn.Conv2d(in_a, ch, 5, 2, 2), ch)
        self.conv0_b = bnns(nn.Conv2d(in_b, ch, 5, 2, 2), ch)
        self.shared_enc = nn.Sequential(bnns(nn.Conv2d(ch, ch * 2, 5, 2, 2), ch * 2),
                                        bnns(nn.Conv2d(ch * 2, ch * 4, 8, 1, 0), ch * 4),
                                        bnns(nn.Conv2d(ch * 4, ch * 8, 1, 1, 0), ch * 8))
        self.latent = GaussianLatent(ch * 8, ch * 8)
        self.shared_dec = nn.Sequential(bnns(nn.ConvTranspose2d(ch * 8, ch * 8, 4, 2, 0), ch * 8),
                                        bnns(nn.ConvTranspose2d(ch * 8, ch * 4, 4, 2, 1), ch * 4),
                                        bnns(nn.ConvTranspose2d(ch * 4, ch * 2, 4, 2, 1), ch * 2))
        self.dec_a = nn.Sequential(bnns(nn.ConvTranspose2d(ch * 2, ch, 4, 2, 1), ch), nn.ConvTranspose2d(ch, out_a, 1),
                                   nn.Tanh())
        self.dec_b = nn.Sequential(bnns(nn.ConvTranspose2d(ch * 2, ch, 4, 2, 1), ch), nn.ConvTranspose2d(ch, out_b, 1),
                                   nn.Tanh())

    def encode(self, x: torch.Tensor, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, sd) of one domain's images (alone through the shared layers)."""
        return self.latent(self.shared_enc((self.conv0_a if domain == "A" else self.conv0_b)(x)))

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        return (self.dec_a if domain == "A" else self.dec_b)(self.shared_dec(z))

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor, sample: bool = True):
        """The official joint pass: (x_aa, x_ba, x_ab, x_bb, mu, sd) with A and B in one batch."""
        h = torch.cat([self.conv0_a(x_a), self.conv0_b(x_b)], 0)
        mu, sd = self.latent(self.shared_enc(h))
        z = mu + sd * torch.randn_like(mu) if sample else mu
        d = self.shared_dec(z)
        out_a, out_b = self.dec_a(d), self.dec_b(d)
        n = x_a.shape[0]
        return out_a[:n], out_a[n:], out_b[:n], out_b[n:], mu, sd


class CoDis32x32(nn.Module):
    def __init__(self, ch: int = 64, in_a: int = 3, in_b: int = 1, num_classes: int = 10):
        super().__init__()

        def stage(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))

        self.conv0_a, self.conv0_b = stage(in_a, ch), stage(in_b, ch)
        self.conv1, self.conv2, self.conv3 = stage(ch, ch * 2), stage(ch * 2, ch * 4), stage(ch * 4, ch * 8)
        self.conv4 = nn.Conv2d(ch * 8, 2, 2)
        self.conv_cl = nn.Conv2d(ch * 8, num_classes, 2)
        self.drop = nn.ModuleList([nn.Dropout(p) for p in (0.1, 0.3, 0.5, 0.5)])

    def _core(self, h0: torch.Tensor, dropout: bool) -> torch.Tensor:
        d = (lambda i, t: self.drop[i](t)) if dropout else (lambda i, t: t)
        h = d(0, h0)
        h = d(1, self.conv1(h))
        h = d(2, self.conv2(h))
        return d(3, self.conv3(h))

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor):
        """(real/fake logits (2N, 2) of A and B in one batch, A's and B's dropout-free features)."""
        h0_a, h0_b = self.conv0_a(x_a), self.conv0_b(x_b)
        logits = self.conv4(self._core(torch.cat([h0_a, h0_b], 0), dropout=True)).flatten(1)
        return logits, self._core(h0_a, dropout=False), self._core(h0_b, dropout=False)

    def classify(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        h0 = (self.conv0_a if domain == "A" else self.conv0_b)(x)
        return self.conv_cl(self._core(h0, dropout=True)).flatten(1)
