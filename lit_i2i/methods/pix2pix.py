"""pix2pix: Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017. Follows junyanz/pytorch-CycleGAN-and-pix2pix (``models/pix2pix_model.py``).

Networks: G = ``unet_256`` (BatchNorm, dropout 0.5 in the inner decoder blocks); D = conditional
70x70 PatchGAN on the 6-channel concatenation [a, b] (BatchNorm).

| term | formula | weight (default) |
|---|---|---|
| loss_G_GAN | GAN(D([a, G(a)]), real) | 1 |
| loss_G_L1 | ‖G(a) − b‖₁ | lambda_L1 = 100 |
| loss_D | ½ [GAN(D([a, b]), real) + GAN(D([a, G(a)]), fake)] | 1 |

GAN = vanilla (BCE with logits); no image pool (pool_size 0). Order per iteration, as the
reference: one forward G(a); D step (on the detached fake); G step (D frozen). Adam(2e-4, 0.5);
100 + 100 epochs, linear decay. Direction AtoB/BtoA is chosen by the datamodule.

Departures from the official code:
  - ``translate`` runs G in eval mode (BatchNorm running statistics, dropout off), the reference's
    ``--eval`` behaviour. The reference's default test mode keeps batch statistics and dropout on
    (the paper's "noise via dropout at test time"); set ``test_train_mode: true`` for that.
  - RNG states are checkpointed (exact resume).
"""

from __future__ import annotations

import torch

from lit_i2i.core import GANLoss, TranslationModule, gradient_penalty, recon_loss
from lit_i2i.nets import define_D, define_G


class Pix2Pix(TranslationModule):
    method_name = "pix2pix"
    generators = {"AtoB": "netG"}
    directions = ("AtoB",)

    def __init__(self, netG: str = "unet_256", netD: str = "basic", ngf: int = 64, ndf: int = 64,
                 n_layers_D: int = 3, n_blocks: int | None = None, n_down: int = 2, norm: str = "batch",
                 use_dropout: bool = True, init_type: str = "normal", init_gain: float = 0.02,
                 in_ch: int = 3, out_ch: int = 3, gan_mode: str = "vanilla", lambda_L1: float = 100.0,
                 lambda_gp: float = 10.0, lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999,
                 lr_policy: str = "linear", n_epochs: int = 100, n_epochs_decay: int = 100,
                 lr_interval: str = "epoch", ema_decay: float | None = None, test_train_mode: bool = False):
        super().__init__(lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                         lr_interval=lr_interval, ema_decay=ema_decay)
        self.save_hyperparameters()
        self.netG = define_G(netG, in_ch, out_ch, ngf=ngf, norm=norm, use_dropout=use_dropout,
                             init_type=init_type, init_gain=init_gain, n_blocks=n_blocks, n_down=n_down)
        self.netD = define_D(netD, in_ch + out_ch, ndf=ndf, n_layers=n_layers_D, norm=norm,
                             init_type=init_type, init_gain=init_gain)
        self.gan = GANLoss(gan_mode)
        self.setup_ema()

    def build_optimizers(self):
        h = self.hparams
        return {"D": torch.optim.Adam(self.netD.parameters(), lr=h.lr, betas=(h.beta1, h.beta2)),
                "G": torch.optim.Adam(self.netG.parameters(), lr=h.lr, betas=(h.beta1, h.beta2))}

    def training_step(self, batch, batch_idx):
        h = self.hparams
        real_A, real_B = batch["A"], batch["B"]
        fake_B = self.netG(real_A)
        # D on real pairs and detached fake pairs
        real_AB, fake_AB = torch.cat([real_A, real_B], 1), torch.cat([real_A, fake_B.detach()], 1)
        loss_D = (self.gan(self.netD(real_AB), True) + self.gan(self.netD(fake_AB), False)) * 0.5
        if h.gan_mode == "wgangp":
            loss_D = loss_D + gradient_penalty(self.netD, real_AB, fake_AB, h.lambda_gp)
        self.step("D", loss_D)
        # G with D frozen
        loss_G_GAN = self.gan(self.netD(torch.cat([real_A, fake_B], 1)), True, for_discriminator=False)
        loss_G_L1 = recon_loss(fake_B, real_B) * h.lambda_L1
        loss_G = loss_G_GAN + loss_G_L1
        self.step("G", loss_G)
        self.log_losses({"G": loss_G, "D": loss_D, "G_GAN": loss_G_GAN, "G_L1": loss_G_L1})

    @torch.no_grad()
    def translate(self, x, direction="AtoB", reference=None):
        g = self.generator(direction)
        if self.hparams.test_train_mode:
            was = g.training
            g.train()
            out = g(x)
            g.train(was)
            return out
        return g(x)

    @torch.no_grad()
    def visuals(self, batch):
        return {"real_A": batch["A"], "fake_B": self.translate(batch["A"]), "real_B": batch["B"]}
