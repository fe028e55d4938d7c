"""DualGAN: Yi, Zhang, Tan, Gong, "DualGAN: Unsupervised Dual Learning for Image-to-Image
Translation", ICCV 2017. Official code: duxingren14/DualGAN (TensorFlow; ``model.py``, ``main.py``,
``ops.py``), which changed over its history. The suite follows its WGAN-era version, fabe044
(2017-05-15; ``model.py`` / ``ops.py`` / ``main.py`` are the same at 3b9f60f and the merge 9bd544e,
and the losses, schedule and critic the same in the first commit d71400c): the version that trains
the paper's method (WGAN with clipping, n_critic critic steps per generator step, RMSProp).

Networks: G_A: A -> B and G_B: B -> A, ``unet_256`` from ``nets/`` (pix2pix's U-Net: 8 levels, dropout
0.5 in the three inner 8·ngf decoder blocks, the paper's noise z; see the departures). D_A judges
domain B, D_B domain A. ``netD: dualgan`` (default) is the official WGAN-era critic,
:class:`lit_i2i.nets.dualgan.DualCritic`, to the parameter: four 5x5 'SAME' convs (strides 2, 2, 2, 1;
ndf, 2ndf, 4ndf, 8ndf; bias), BatchNorm with batch statistics on the last three, LeakyReLU 0.2, then a
**fully connected** layer to one score per image (a global critic; 4,832,641 parameters at 256x256,
ndf 64, RGB: its size needs ``image_size``). The paper instead describes a 70x70 PatchGAN averaged over
the image; that is ``netD: basic`` (pix2pix's PatchGAN, ``norm``, normal(0, 0.02) init), kept as the
option. Critics output raw scores (no sigmoid).

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
parameters of D_A and D_B (BatchNorm scales and offsets included, as the official ``d_vars``) are
clipped to [−clip_value, clip_value] = [−0.01, 0.01] (:func:`lit_i2i.core.clip_weights_`, in
:meth:`DualGAN.step`, so no D update escapes it).

Order (the paper's Algorithm 1, WGAN's loop): ``n_critic`` = 3 critic updates (D_A and D_B together,
each followed by the clipping), then one generator update (G_A and G_B together): iteration i updates
D, and then G when i % n_critic == n_critic − 1 (D, D, D+G, D, D, D+G, ...). The iteration counter is
the base class's ``iteration`` (checkpointed), so the schedule continues exactly on resume.
RMSProp(lr 5e-5, decay 0.9) for both; constant learning rate. No image pool, no identity loss.

Defaults, by version of the official code (each verified in its ``main.py`` / ``model.py``):

| setting | WGAN-era fabe044 (followed here) | head 915116c (2020-04-03) | 3139ecf / d7ee5b8 (2017-08) |
|---|---|---|---|
| GAN loss | WGAN, weight clipping 0.01 (``--clamp``) | ``--GAN_type wgan-gp``, penalty weight 10 (``self.gamma``); clipping only for ``wgan`` | sigmoid cross-entropy, no clipping |
| critic steps per G step | ``--n_critic 3`` | ``--n_critic 1`` | 1 D step, then 2 G steps |
| λ_U = λ_V | 200 | 500 | 20 (also the README's commands) |
| critic | global: 4 convs 5x5, then fully connected | ``--disc_type globalgan`` (fully connected; ``patchgan`` optional): 5x5 conv, four 3x3 stride-2 convs, per-image norm | patch: the 4 convs, then a 5x5 conv to 1 channel |
| norm | ``tf.contrib`` batch norm, batch statistics always | per-image, per-channel (instance norm, learned scale ~ N(1, 0.02) and offset) | as the head |
| G kernels / dropout | 5x5; ``tf.nn.dropout`` keep 0.5 in d1-d3, train and test | 3x3 (5x5 first and last); ``--dropout_rate 0`` | 5x5; keep 0.5 |
| optimizer, batch | RMSProp 5e-5, decay 0.9; ``--batch_size 1``, 50 epochs | the same; 50 epochs | the same |

The head's losses and schedule are ``gan_mode: wgangp, clip_value: null, lambda_gp: 10,
n_critic: 1, lambda_A/B: 500`` here, but with the WGAN-era critic (the head's global critic has a
fifth conv, 3x3 kernels and per-image norm; with this critic's batch statistics the gradient penalty
is not per-sample, so for WGAN-GP ``netD: basic`` with ``norm: instance`` is the closer choice).
The 2017-08 setting is ``gan_mode: vanilla, clip_value: null, lambda_A/B: 20`` (not its two G steps).

What else the WGAN-era code does:
  - The generator update takes its batch at random among the iteration's ``n_critic`` critic batches
    (A and B drawn independently); here it reuses the last critic batch.
  - Its epoch is min(|A|, |B|) // (batch · n_critic) iterations, and iteration ``idx`` loads batches
    ``idx .. idx + n_critic − 1`` (consecutive iterations overlap; each epoch sees about the first
    third of the shuffled files). Here an epoch is one pass over the data, one batch per iteration.
  - ``--flip`` is parsed as ``flip = (args.flip == 'True')`` on a bool: always False, no flipping.

Departures from the WGAN-era code:
  - The generators are pix2pix's U-Net (4x4 kernels, which the paper cites) instead of 5x5 kernels,
    with the suite's ``norm`` (default InstanceNorm without affine parameters; the official batch
    norm with batch statistics equals InstanceNorm with affine at its batch size 1) and no norm on
    the innermost 1x1 code (there the official normalisation outputs its learned offset whatever the
    input).
  - Dropout is off in eval mode (``translate``); the official ``tf.nn.dropout`` also drops at test time.
  - PyTorch's RMSprop (alpha 0.9 = TF's decay; eps 1e-8 outside the square root, mean square starting
    at 0) instead of TF1's (eps 1e-10 inside, mean square starting at 1): early steps are larger here.
  - ``loss_G`` / ``loss_D`` are logged as the sums of their terms, as CycleGAN here.
Departures from the paper: the default critic is the official global one, not the paper's 70x70
PatchGAN (``netD: basic``), because the WGAN settings followed here (clipping 0.01, lr 5e-5,
n_critic 3) were run with it; the losses and schedule are the paper's. ``n_critic`` (paper: 2-4),
``clip_value`` (paper: 0.01-0.1, by domain), λ (paper: 100-1000) and the batch size (paper: 1-4) are
options.
"""

from __future__ import annotations

import torch

from lit_i2i.core import GANLoss, clip_weights_, gradient_penalty
from lit_i2i.core.module import TranslationModule
from lit_i2i.methods.cyclegan import CycleGAN
from lit_i2i.nets import define_G
from lit_i2i.nets.dualgan import DualCritic


class DualGAN(CycleGAN):
    """DualGAN; shares CycleGAN's directions, ``forward_cycle``, ``generator_losses`` and ``visuals``."""

    method_name = "dualgan"

    def __init__(self, netG: str = "unet_256", netD: str = "dualgan", ngf: int = 64, ndf: int = 64,
                 n_layers_D: int = 3, image_size: int = 256, norm: str = "instance", use_dropout: bool = True, init_type: str = "normal",
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
        if netD == "dualgan":  # the official WGAN-era critic (its own init and norm; see lit_i2i.nets.dualgan)
            self.netG_A, self.netG_B = define_G(netG, in_ch, out_ch, **g), define_G(netG, out_ch, in_ch, **g)
            self.netD_A, self.netD_B = DualCritic(out_ch, ndf, image_size), DualCritic(in_ch, ndf, image_size)
        else:  # the paper's PatchGAN (basic: 70x70) or another define_D name
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
