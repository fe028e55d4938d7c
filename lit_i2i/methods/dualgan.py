"""DualGAN: Yi, Zhang, Tan, Gong, "DualGAN: Unsupervised Dual Learning for Image-to-Image
Translation", ICCV 2017. Official code: duxingren14/DualGAN (TensorFlow; ``model.py``, ``main.py``,
``ops.py``), which changed over its history; the paper is followed where they disagree, and each
choice is listed below.

Networks, from ``nets/`` (the paper: the same U-Net for both generators, 70x70 PatchGAN critics): G_A: A -> B
and G_B: B -> A are ``unet_256`` (8 levels, dropout 0.5 in the three inner 8·ngf decoder blocks, the
paper's noise z); D_A judges domain B, D_B domain A, ``basic`` PatchGAN; InstanceNorm; init
normal(0, 0.02). D outputs raw scores (no sigmoid: a WGAN critic).

| term | formula | weight (default) |
|---|---|---|
| loss_G_A | −mean D_A(G_A(a)) | 1 |
| loss_G_B | −mean D_B(G_B(b)) | 1 |
| loss_cycle_A | ‖G_B(G_A(a)) − a‖₁ | lambda_A (λ_U) = 200 |
| loss_cycle_B | ‖G_A(G_B(b)) − b‖₁ | lambda_B (λ_V) = 200 |
| loss_D_A | mean D_A(G_A(a)) − mean D_A(b) | 1 |
| loss_D_B | mean D_B(G_B(b)) − mean D_B(a) | 1 |

(The ``wgan`` mode of :class:`lit_i2i.core.GANLoss`: −D(x) for real, D(G(z)) for fake, −D(G(z)) for
G; the generator losses are CycleGAN's ``generator_losses``, inherited.) After every critic step all
parameters of D_A and D_B are clipped to [−clip_value, clip_value] = [−0.01, 0.01]
(:func:`lit_i2i.core.clip_weights_`, in :meth:`DualGAN.step`, so no D update escapes it).

Order (the paper's Algorithm 1, WGAN's loop): ``n_critic`` = 3 critic updates (D_A and D_B together,
each followed by the clipping), then one generator update (G_A and G_B together): iteration i updates
D, and then G when i % n_critic == n_critic − 1 (D, D, D+G, D, D, D+G, ...). The iteration counter is
the base class's ``iteration`` (checkpointed), so the schedule continues exactly on resume. RMSProp(lr 5e-5, decay 0.9) for
both, as the official code (the paper picks RMSProp over Adam for stability, as WGAN does);
constant learning rate. No image pool, no identity loss.

What the official code says, by version (duxingren14/DualGAN):
  - ``main.py`` at fabe044 (the WGAN-era version): ``--lr 5e-5``, ``--lambda_A/B 200``, ``--n_critic 3``,
    ``--clamp 0.01``: the defaults here (all inside the paper's ranges: λ in [100, 1000]).
  - ``model.py`` / ``main.py`` at 3139ecf and d7ee5b8 (later; the README's commands): sigmoid
    cross-entropy GAN, no clipping (``clip_trainable_vars`` is defined, never called), one D step then
    two G steps per batch, λ 20. Not the paper's method; ``gan_mode: vanilla``, ``clip_value: null``,
    ``lambda_A/B: 20`` gets its losses (not its two G steps).
  - Its nets: 5x5 kernels ('SAME' padding), a per-image, per-channel normalisation with a learned
    scale and offset (InstanceNorm with affine), normalisation even on the 1x1 innermost code, a
    critic of three stride-2 and one stride-1 5x5 convs then a 5x5 conv to one channel.

Departures from the official code:
  - 4x4 kernels (pix2pix's U-Net and PatchGAN, which the paper cites) instead of 5x5; the critic's
    patches are then 70x70 as the paper says (5x5 kernels make them 93x93).
  - InstanceNorm without affine parameters (the project's ``instance`` norm), and none on the
    innermost 1x1 code (there, the official normalisation outputs its learned offset whatever the input).
  - Dropout is off in eval mode (``translate``); the official ``tf.nn.dropout`` also drops at test time.
  - PyTorch's RMSprop (alpha 0.9 = TF's decay; eps 1e-8 outside the square root, mean square starting
    at 0) instead of TF1's (eps 1e-10 inside, mean square starting at 1): early steps are larger here.
  - The generator update reuses the last critic iteration's batch (Algorithm 1 samples a fresh one).
  - ``loss_G`` / ``loss_D`` are logged as the sums of their terms, as CycleGAN here.
Departures from the paper: none in the losses or schedule; ``n_critic`` (paper: 2-4), ``clip_value``
(paper: 0.01-0.1, by domain), λ (paper: 100-1000) and the batch size (paper: 1-4) are options.
"""

from __future__ import annotations

import torch

from lit_i2i.core import GANLoss, clip_weights_, gradient_penalty
from lit_i2i.core.module import TranslationModule
from lit_i2i.methods.cyclegan import CycleGAN


class DualGAN(CycleGAN):
    """DualGAN; shares CycleGAN's directions, ``forward_cycle``, ``generator_losses`` and ``visuals``."""

    method_name = "dualgan"

    def __init__(self, netG: str = "unet_256", netD: str = "basic", ngf: int = 64, ndf: int = 64,
                 n_layers_D: int = 3, norm: str = "instance", use_dropout: bool = True, init_type: str = "normal",
                 init_gain: float = 0.02, in_ch: int = 3, out_ch: int = 3, gan_mode: str = "wgan",
                 clip_value: float | None = 0.01, n_critic: int = 3, lambda_A: float = 200.0,
                 lambda_B: float = 200.0, lambda_identity: float = 0.0, lambda_gp: float = 10.0,
                 lr: float = 5e-5, rms_alpha: float = 0.9, lr_policy: str = "constant", n_epochs: int = 100,
                 n_epochs_decay: int = 100, lr_interval: str = "epoch", ema_decay: float | None = None):
        hparams = {k: v for k, v in locals().items() if k != "self"}  # this signature's arguments
        # CycleGAN.__init__ is skipped on purpose (it builds CycleGAN's nets (no dropout) and pools), and with it the
        # frame inspection of a bare save_hyperparameters(): the arguments are given explicitly
        TranslationModule.__init__(self, lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                                   lr_interval=lr_interval, ema_decay=ema_decay)
        self.save_hyperparameters(hparams)
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if clip_value is not None and gan_mode != "wgan":
            raise ValueError(f"clip_value applies to gan_mode wgan only; set clip_value: null for {gan_mode!r}")
        if lambda_identity > 0 and in_ch != out_ch:
            raise ValueError("lambda_identity > 0 needs in_ch == out_ch (the identity loss feeds B to G_A)")
        g = dict(ngf=ngf, norm=norm, use_dropout=use_dropout, init_type=init_type, init_gain=init_gain)
        d = dict(ndf=ndf, n_layers=n_layers_D, norm=norm, init_type=init_type, init_gain=init_gain)
        self.build_cycle_nets(netG, netD, in_ch, out_ch, g, d)
        self.gan = GANLoss(gan_mode)
        self.setup_ema()

    def build_optimizers(self):
        h = self.hparams
        return {
            "D": torch.optim.RMSprop([*self.netD_A.parameters(), *self.netD_B.parameters()], lr=h.lr, alpha=h.rms_alpha),
            "G": torch.optim.RMSprop([*self.netG_A.parameters(), *self.netG_B.parameters()], lr=h.lr, alpha=h.rms_alpha),
        }

    def step(self, name: str, loss: torch.Tensor, clip: float | None = None) -> None:
        """One update; after a critic (``D``) update, WGAN weight clipping of both critics."""
        super().step(name, loss, clip)
        if name == "D" and self.hparams.clip_value is not None:
            clip_weights_([*self.netD_A.parameters(), *self.netD_B.parameters()], self.hparams.clip_value)

    def updates(self, iteration: int | None = None) -> tuple[str, ...]:
        """The optimizer steps of ``iteration`` (default: now), in order."""
        k = self.hparams.n_critic
        it = self.iteration if iteration is None else iteration
        return ("D", "G") if it % k == k - 1 else ("D",)

    def discriminator_loss(self, netD, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        loss = self.gan(netD(real), True) + self.gan(netD(fake), False)  # the official sum, no 1/2
        if self.hparams.gan_mode == "wgangp":
            loss = loss + gradient_penalty(netD, real, fake, self.hparams.lambda_gp)
        return loss

    def training_step(self, batch, batch_idx):
        steps = self.updates()
        a, b = batch["A"], batch["B"]
        with torch.set_grad_enabled("G" in steps):  # a critic-only iteration needs no generator graph
            v = self.forward_cycle(a, b) if "G" in steps else {"fake_B": self.netG_A(a), "fake_A": self.netG_B(b)}
        loss_D_A = self.discriminator_loss(self.netD_A, b, v["fake_B"].detach())
        loss_D_B = self.discriminator_loss(self.netD_B, a, v["fake_A"].detach())
        loss_D = loss_D_A + loss_D_B
        self.step("D", loss_D)
        logs = {"D": loss_D, "D_A": loss_D_A, "D_B": loss_D_B}
        if "G" in steps:  # against the critics just updated (and clipped)
            g = self.generator_losses(v)
            loss_G = sum(g.values())
            self.step("G", loss_G)
            logs.update(G=loss_G, **g)
        self.log_losses(logs)
