"""GAN and reconstruction losses shared by every method.

| loss | discriminator (real / fake) | generator |
|---|---|---|
| ``vanilla`` | BCE-with-logits(D(x), 1) / BCE(D(G(z)), 0) | BCE(D(G(z)), 1) (non-saturating) |
| ``lsgan`` | (D(x) - 1)^2 / D(G(z))^2 (mean) | (D(G(z)) - 1)^2 |
| ``hinge`` | relu(1 - D(x)) / relu(1 + D(G(z))) (mean) | -D(G(z)) |
| ``wgan`` / ``wgangp`` | -D(x) / D(G(z)) (mean) | -D(G(z)) |

``GANLoss`` follows junyanz/pytorch-CycleGAN-and-pix2pix ``networks.GANLoss`` for vanilla/lsgan
(targets broadcast to the prediction's shape, mean over every patch). Predictions may be a list of
maps (multi-scale discriminators): the losses of the scales are summed. Everything is computed in
float32 so that mixed precision (``16-mixed``/``bf16-mixed``) never evaluates a log or a square of
half-precision logits.

Also here: :func:`feature_matching_loss` (DiscoGAN's batch-mean feature matching on discriminator
activations) and :func:`clip_weights_` (the WGAN weight clipping DualGAN applies after each critic step).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgan", "wgangp")


class GANLoss(nn.Module):
    def __init__(self, mode: str = "lsgan", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode {mode!r} is not one of {GAN_MODES}")
        self.mode, self.real_label, self.fake_label = mode, real_label, fake_label

    def _single(self, pred: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        pred = pred.float()
        if self.mode in ("vanilla", "lsgan"):
            target = torch.full_like(pred, self.real_label if target_is_real else self.fake_label)
            if self.mode == "vanilla":
                return F.binary_cross_entropy_with_logits(pred, target)
            return F.mse_loss(pred, target)
        if self.mode == "hinge" and for_discriminator:
            return F.relu(1 - pred).mean() if target_is_real else F.relu(1 + pred).mean()
        # wgan, wgangp, and the hinge generator loss
        return -pred.mean() if target_is_real else pred.mean()

    def forward(self, pred: torch.Tensor | Sequence[torch.Tensor], target_is_real: bool,
                for_discriminator: bool = True) -> torch.Tensor:
        """Loss of discriminator output(s) ``pred`` against the real/fake target.

        ``for_discriminator=False`` asks for the generator's loss (only hinge differs: the generator
        minimises -D(G(z)) with ``target_is_real=True``).
        """
        if isinstance(pred, (list, tuple)):
            return sum(self._single(p, target_is_real, for_discriminator) for p in pred)
        return self._single(pred, target_is_real, for_discriminator)


def gradient_penalty(netD: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     kind: str = "mixed", constant: float = 1.0) -> torch.Tensor:
    """WGAN-GP: weight * E[(||grad D(x_hat)||_2 - constant)^2], x_hat between real and fake.

    ``kind``: ``mixed`` (random interpolation, Gulrajani et al.), ``real`` or ``fake``.
    """
    if kind == "real":
        x = real
    elif kind == "fake":
        x = fake
    else:
        alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
        x = alpha * real + (1 - alpha) * fake
    x = x.detach().requires_grad_(True)
    out = netD(x)
    out = sum(o.float().sum() for o in out) if isinstance(out, (list, tuple)) else out.float().sum()
    (grad,) = torch.autograd.grad(out, x, create_graph=True)
    norm = grad.flatten(1).float().norm(2, dim=1)
    return weight * ((norm - constant) ** 2).mean()


def r1_penalty(d_real: torch.Tensor, x_real: torch.Tensor, gamma: float = 10.0) -> torch.Tensor:
    """R1 (Mescheder et al.): gamma/2 * E[||grad_x D(x)||^2] on real images.

    ``x_real`` must have ``requires_grad`` set before ``d_real = D(x_real)`` was computed.
    """
    (grad,) = torch.autograd.grad(d_real.float().sum(), x_real, create_graph=True)
    return 0.5 * gamma * grad.float().pow(2).flatten(1).sum(1).mean()


def recon_loss(x: torch.Tensor, y: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Reconstruction: mean absolute (``l1``) or squared (``l2``/``mse``) error, in float32."""
    if kind == "l1":
        return F.l1_loss(x.float(), y.float())
    if kind in ("l2", "mse"):
        return F.mse_loss(x.float(), y.float())
    raise ValueError(f"reconstruction loss {kind!r} is not l1 or l2")


def feature_matching_loss(real_feats: Sequence[torch.Tensor], fake_feats: Sequence[torch.Tensor]) -> torch.Tensor:
    """Batch-mean feature matching (Salimans et al. 2016; DiscoGAN's ``get_fm_loss``), in float32:

    sum over layers l of mean_{c,h,w} (E_batch f_l(real) - E_batch f_l(fake))^2.

    The official DiscoGAN code writes each term as ``HingeEmbeddingLoss(d, ones)``, which for the
    target 1 is the plain mean of ``d`` (here d >= 0), i.e. this MSE between the two batch means.
    """
    if len(real_feats) != len(fake_feats):
        raise ValueError(f"feature lists differ in length: {len(real_feats)} real vs {len(fake_feats)} fake")
    return sum(F.mse_loss(f.float().mean(0), r.float().mean(0)) for r, f in zip(real_feats, fake_feats))


@torch.no_grad()
def clip_weights_(params: nn.Module | Sequence[torch.Tensor], value: float) -> None:
    """WGAN weight clipping (Arjovsky et al. 2017): clamp every parameter to [-value, value], in place.

    ``params``: a module (all its parameters) or a sequence of tensors. Buffers (e.g. BatchNorm
    running statistics) are not parameters and are left alone, as in the WGAN and DualGAN code.
    """
    if value <= 0:
        raise ValueError(f"clip value must be positive, got {value}")
    for p in params.parameters() if isinstance(params, nn.Module) else params:
        p.clamp_(-value, value)


def iic_loss(p: torch.Tensor, q: torch.Tensor, lamb: float = 1.0, eps: float = 1e-10) -> torch.Tensor:
    """IIC (Ji et al. 2019): minus the mutual information of the cluster assignments of two views.

    ``p``, ``q``: (N, K) softmax outputs of the two views. The joint P = sum_n p_n q_n^T is
    symmetrised and normalised; loss = -sum_ij P_ij (log P_ij - lamb log P_i - lamb log P_j), with the
    marginals taken from the joint before entries below ``eps`` are raised to ``eps`` (as IIC's and
    TUNIT's ``calc_iic_loss``; raised entries get no gradient). Perfect balanced clustering of K
    clusters gives -log K; independent (e.g. uniform) assignments give 0. In float32.
    """
    p, q = p.float(), q.float()
    if p.shape != q.shape or p.ndim != 2:
        raise ValueError(f"iic_loss: expected two (N, K) tensors of one shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    joint = p.t() @ q  # (K, K): sum over samples of the outer products
    joint = (joint + joint.t()) / 2
    joint = joint / joint.sum()
    k = joint.shape[0]
    p_i = joint.sum(1, keepdim=True).expand(k, k)
    p_j = joint.sum(0, keepdim=True).expand(k, k)
    floor = torch.tensor(eps, dtype=joint.dtype, device=joint.device)
    joint, p_i, p_j = (torch.where(t < eps, floor, t) for t in (joint, p_i, p_j))
    return -(joint * (joint.log() - lamb * p_j.log() - lamb * p_i.log())).sum()


def info_nce(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor | None,
             temperature: float = 0.07) -> torch.Tensor:
    """InfoNCE / MoCo contrastive loss: cross-entropy of the positive among the logits
    [q . k, q . n_1, ..., q . n_M] / temperature, mean over the N queries.

    ``query``, ``key``: (N, D); ``key`` is detached (MoCo's key encoder gets no gradient); ``negatives``:
    (M, D) (a queue of past keys) or None/empty (then the loss is 0). Codes are used as given, with
    no L2 normalisation (TUNIT's ``calc_contrastive_loss``). In float32.
    """
    q, k = query.float(), key.detach().float()
    pos = (q * k).sum(1, keepdim=True)
    logits = pos if negatives is None or len(negatives) == 0 else torch.cat([pos, q @ negatives.detach().float().t()], 1)
    target = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits / temperature, target)
