"""CycleGAN: Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017. Follows junyanz/pytorch-CycleGAN-and-pix2pix
(``models/cycle_gan_model.py``, ``models/networks.py``).

Networks: G_A: A -> B and G_B: B -> A (``resnet_9blocks``, InstanceNorm, no dropout); D_A judges
domain B (real_B vs G_A(A)), D_B judges domain A (70x70 PatchGAN ``basic``). Init normal(0, 0.02).

| term | formula | weight (default) |
|---|---|---|
| loss_G_A | GAN(D_A(G_A(a)), real) | 1 |
| loss_G_B | GAN(D_B(G_B(b)), real) | 1 |
| loss_cycle_A | ‖G_B(G_A(a)) − a‖₁ | lambda_A = 10 |
| loss_cycle_B | ‖G_A(G_B(b)) − b‖₁ | lambda_B = 10 |
| loss_idt_A | ‖G_A(b) − b‖₁ | lambda_B · lambda_identity = 10 · 0.5 |
| loss_idt_B | ‖G_B(a) − a‖₁ | lambda_A · lambda_identity = 10 · 0.5 |
| loss_D_A | ½ [GAN(D_A(b), real) + GAN(D_A(pool_B(G_A(a))), fake)] | 1 |
| loss_D_B | ½ [GAN(D_B(a), real) + GAN(D_B(pool_A(G_B(b))), fake)] | 1 |

GAN = LSGAN (``gan_mode``: vanilla / lsgan / hinge / wgangp also accepted). Order per iteration, as
the reference: one forward; G step (both generators, D frozen); D step (both discriminators, on
fakes from the 50-image history pools). Adam(2e-4, 0.5, 0.999) for both; ``linear`` policy: 100
epochs constant then 100 epochs of linear decay to 0.

Departures from the official code:
  - The pools are checkpointed and the RNG states saved, so resume is exact (the reference restarts
    with empty pools).
  - ``loss_G`` / ``loss_D`` are logged as the sums of their terms (the reference logs terms only).
  - ``lr_interval: step`` (schedule counted in steps) exists for short CPU runs; the reference counts epochs.
  - Optional generator EMA (``ema_decay``) is off by default, as in the reference.
  - ``norm_D``: the discriminators' normalisation, by default ``norm`` (the reference's one ``--norm``
    for G and D). The quickstart sets ``none``: at 32x32 a PatchGAN's InstanceNorm whitens each
    image's channels, and so most of the colour a colored-digit critic needs (``experiments/quickstart.yaml``).
Departures from the paper: identity loss on by default (the paper uses it for paintings<->photos
only; the code enables 0.5 everywhere; set ``lambda_identity: 0`` for the paper's default).

The cycle family: DiscoGAN (``methods/discogan.py``: encoder-decoder nets from ``nets/discogan.py``,
BCE GAN + feature matching + MSE reconstruction with a rate curriculum, one update per iteration) and
DualGAN (``methods/dualgan.py``: U-Net generators and the WGAN-era official critic (5x5 convs ending in a
fully connected score), WGAN with weight clipping, n_critic critic
updates per generator update, RMSProp, L1 reconstruction weights of a few hundred) subclass this
class for its directions, ``forward_cycle`` and ``visuals``; their docstrings give their loss tables
and departures.
"""

from __future__ import annotations

import itertools

import torch

from lit_i2i.core import GANLoss, ImagePool, TranslationModule, gradient_penalty, recon_loss
from lit_i2i.nets import define_D, define_G


class CycleGAN(TranslationModule):
    method_name = "cyclegan"
    generators = {"AtoB": "netG_A", "BtoA": "netG_B"}

    def __init__(self, netG: str = "resnet_9blocks", netD: str = "basic", ngf: int = 64, ndf: int = 64,
                 n_layers_D: int = 3, n_blocks: int | None = None, n_down: int = 2, norm: str = "instance",
                 init_type: str = "normal", init_gain: float = 0.02, in_ch: int = 3, out_ch: int = 3,
                 gan_mode: str = "lsgan", lambda_A: float = 10.0, lambda_B: float = 10.0,
                 lambda_identity: float = 0.5, lambda_gp: float = 10.0, pool_size: int = 50,
                 lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999,
                 lr_policy: str = "linear", n_epochs: int = 100, n_epochs_decay: int = 100,
                 lr_interval: str = "epoch", ema_decay: float | None = None, norm_D: str | None = None):
        super().__init__(lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                         lr_interval=lr_interval, ema_decay=ema_decay)
        self.save_hyperparameters()
        g = dict(ngf=ngf, norm=norm, use_dropout=False, init_type=init_type, init_gain=init_gain,
                 n_blocks=n_blocks, n_down=n_down)
        d = dict(ndf=ndf, n_layers=n_layers_D, norm=norm if norm_D is None else norm_D, init_type=init_type, init_gain=init_gain)
        self.build_cycle_nets(netG, netD, in_ch, out_ch, g, d)
        self.gan = GANLoss(gan_mode)
        if lambda_identity > 0 and in_ch != out_ch:
            raise ValueError("lambda_identity > 0 needs in_ch == out_ch (the identity loss feeds B to G_A)")
        self.pools = {"fake_A": ImagePool(pool_size), "fake_B": ImagePool(pool_size)}
        self.setup_ema()

    def build_cycle_nets(self, netG: str, netD: str, in_ch: int, out_ch: int, g: dict, d: dict) -> None:
        """The cycle's four nets: G_A (in_ch -> out_ch), G_B (back), D_A on domain B, D_B on domain A."""
        self.netG_A = define_G(netG, in_ch, out_ch, **g)
        self.netG_B = define_G(netG, out_ch, in_ch, **g)
        self.netD_A = define_D(netD, out_ch, **d)
        self.netD_B = define_D(netD, in_ch, **d)

    def build_optimizers(self):
        h = self.hparams
        betas = (h.beta1, h.beta2)
        return {
            "G": torch.optim.Adam(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()), lr=h.lr, betas=betas),
            "D": torch.optim.Adam(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()), lr=h.lr, betas=betas),
        }

    def forward_cycle(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        fake_B = self.netG_A(real_A)
        fake_A = self.netG_B(real_B)
        return {"real_A": real_A, "fake_B": fake_B, "rec_A": self.netG_B(fake_B),
                "real_B": real_B, "fake_A": fake_A, "rec_B": self.netG_A(fake_A)}

    def generator_losses(self, v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.hparams
        losses = {
            "G_A": self.gan(self.netD_A(v["fake_B"]), True, for_discriminator=False),
            "G_B": self.gan(self.netD_B(v["fake_A"]), True, for_discriminator=False),
            "cycle_A": recon_loss(v["rec_A"], v["real_A"]) * h.lambda_A,
            "cycle_B": recon_loss(v["rec_B"], v["real_B"]) * h.lambda_B,
        }
        if h.lambda_identity > 0:
            losses["idt_A"] = recon_loss(self.netG_A(v["real_B"]), v["real_B"]) * h.lambda_B * h.lambda_identity
            losses["idt_B"] = recon_loss(self.netG_B(v["real_A"]), v["real_A"]) * h.lambda_A * h.lambda_identity
        return losses

    def discriminator_loss(self, netD, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        loss = (self.gan(netD(real), True) + self.gan(netD(fake), False)) * 0.5
        if self.hparams.gan_mode == "wgangp":
            loss = loss + gradient_penalty(netD, real, fake, self.hparams.lambda_gp)
        return loss

    def training_step(self, batch, batch_idx):
        v = self.forward_cycle(batch["A"], batch["B"])
        # G_A and G_B, with D_A and D_B frozen
        g = self.generator_losses(v)
        loss_G = sum(g.values())
        self.step("G", loss_G)
        # D_A and D_B on pooled fakes
        fake_B = self.pools["fake_B"].query(v["fake_B"].detach())
        fake_A = self.pools["fake_A"].query(v["fake_A"].detach())
        loss_D_A = self.discriminator_loss(self.netD_A, v["real_B"], fake_B)
        loss_D_B = self.discriminator_loss(self.netD_B, v["real_A"], fake_A)
        loss_D = loss_D_A + loss_D_B
        self.step("D", loss_D)
        self.log_losses({"G": loss_G, "D": loss_D, "D_A": loss_D_A, "D_B": loss_D_B, **g})

    @torch.no_grad()
    def visuals(self, batch):
        v = {}
        v["real_A"] = batch["A"]
        v["fake_B"] = self.translate(batch["A"], "AtoB")
        v["rec_A"] = self.translate(v["fake_B"], "BtoA")
        v["real_B"] = batch["B"]
        v["fake_A"] = self.translate(batch["B"], "BtoA")
        v["rec_B"] = self.translate(v["fake_A"], "AtoB")
        return v
