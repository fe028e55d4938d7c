"""DiscoGAN: Kim, Cha, Kim, Lee, Kim, "Learning to Discover Cross-Domain Relations with Generative
Adversarial Networks", ICML 2017. Follows SKTBrain/DiscoGAN at its head f044178 (2017-04-12; the
losses and loop have not changed since the first commit): ``discogan/image_translation.py``,
``discogan/model.py``, ``discogan/dataset.py``, ``script.sh``.

Networks (:mod:`lit_i2i.nets.discogan`): G_A: A -> B and G_B: B -> A, conv encoder (4x4 stride 2,
LeakyReLU 0.2, BatchNorm but on the first layer) and deconv decoder (BatchNorm, ReLU, Tanh), no skips,
64x64 -> 4x4x512 -> 64x64; D_A judges domain B, D_B domain A: 4x4 stride-2 convs with BatchNorm and
LeakyReLU, one logit per image at 64x64, and its three hidden activations for feature matching. No
bias anywhere; PyTorch's default init (the official code calls no init; ``init_type: none``).

With rate = ``starting_rate`` (0.01) for the first ``gan_curriculum`` (10,000) iterations, then
``default_rate`` (0.5):

| term | formula | weight (default) |
|---|---|---|
| loss_G_A | BCE(D_A(G_A(a)), real) | gan_weight · (1 − rate) = 0.1 · (1 − rate) |
| loss_G_B | BCE(D_B(G_B(b)), real) | 0.1 · (1 − rate) |
| loss_fm_A | Σ_l mean (E_batch f_l(b) − E_batch f_l(G_A(a)))², f_l: D_A's hidden layers | fm_weight · (1 − rate) |
| loss_fm_B | the same with D_B on a and G_B(b) | 0.9 · (1 − rate) |
| loss_cycle_A | MSE of G_B(G_A(a)) and a, on images mapped to [0, 1] | rate |
| loss_cycle_B | MSE of G_A(G_B(b)) and b, on images mapped to [0, 1] | rate |
| loss_D_A | ½ [BCE(D_A(b), real) + BCE(D_A(G_A(a)), fake)] | 1 |
| loss_D_B | ½ [BCE(D_B(a), real) + BCE(D_B(G_B(b)), fake)] | 1 |

(The official names run the other way: its ``generator_B`` maps A -> B and ``gen_loss_A_total`` =
(gen_loss_B · 0.1 + fm_loss_B · 0.9)(1 − rate) + recon_loss_A · rate is our G_A + fm_A + cycle_A.)
The feature-matching term is :func:`lit_i2i.core.feature_matching_loss` (the official
``HingeEmbeddingLoss(d², 1)`` is the mean of d²). BCE is the non-saturating ``vanilla`` GANLoss.

Order, as the official loop: one forward per iteration, then exactly one update: the discriminators
when ``iteration % update_interval == 0`` (iteration 0 included), else the generators; the default
``update_interval: 3`` gives D, G, G, D, G, G, ... (``update_interval: null``: a G step then a D step
every iteration, the CycleGAN order). The iteration counter is the base class's ``iteration``
(checkpointed), so the curriculum and the schedule continue exactly on resume. Adam(2e-4, 0.5, 0.999), weight decay 1e-5
for both; constant learning rate. No image pool.

Departures from the official code:
  - Images in [-1, 1] and a Tanh output (the official: [0, 1] and Sigmoid). The reconstruction MSE is
    measured after mapping both images back to [0, 1] (i.e. it is the [-1, 1] MSE / 4), so that
    ``rate`` keeps its official balance against the GAN terms.
  - D returns logits and BCE-with-logits replaces Sigmoid + BCELoss (the same loss, numerically safe).
  - Only ``model_arch: discogan`` (the official ``gan`` / ``recongan`` ablations are not built).
  - On a D-only iteration the fakes are made without a graph and the reconstructions are skipped (the
    official code runs the whole forward every time; only G's BatchNorm running statistics differ).
  - ``translate`` / evaluation run the generators in eval mode (BatchNorm running statistics); the
    official code never calls ``.eval()``, so its test images use batch statistics.
  - The net depth follows ``image_size`` (log2(size) − 2 levels, 4 at 64x64) so 32x32 digits work;
    ``ngf`` / ``ndf`` are parameters (official: 64).
  - ``loss_G`` / ``loss_D`` are logged as the sums of their (weighted) terms, as CycleGAN here.
Departures from the paper: the paper gives the loss as L_GAN + L_CONST without the 0.1 / 0.9
feature-matching split or the rate curriculum; those are the official code's, followed here. The
official ``script.sh`` runs every task with batch 500 (the ``--batch_size`` default is 64) and
shoes2handbags with ``--starting_rate 0.5`` (no curriculum in effect); the configs say which they use.
"""

from __future__ import annotations

import torch

from lit_i2i.core import GANLoss, feature_matching_loss, recon_loss
from lit_i2i.core.module import TranslationModule
from lit_i2i.methods.cyclegan import CycleGAN
from lit_i2i.nets import DiscoDiscriminator, DiscoGenerator, discogan_depth, init_weights


class DiscoGAN(CycleGAN):
    """DiscoGAN; shares CycleGAN's directions, ``forward_cycle``, ``visuals`` and D loss, not its nets."""

    method_name = "discogan"

    def __init__(self, image_size: int = 64, ngf: int = 64, ndf: int = 64, norm: str = "batch",
                 init_type: str = "none", init_gain: float = 0.02, in_ch: int = 3, out_ch: int = 3,
                 gan_mode: str = "vanilla", gan_weight: float = 0.1, fm_weight: float = 0.9,
                 starting_rate: float = 0.01, default_rate: float = 0.5, gan_curriculum: int = 10000,
                 update_interval: int | None = 3, lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999,
                 weight_decay: float = 1e-5, lr_policy: str = "constant", n_epochs: int = 100,
                 n_epochs_decay: int = 100, lr_interval: str = "epoch", ema_decay: float | None = None):
        hparams = {k: v for k, v in locals().items() if k != "self"}  # this signature's arguments
        # CycleGAN.__init__ is skipped on purpose (it builds CycleGAN's nets and pools), and with it the
        # frame inspection of a bare save_hyperparameters(): the arguments are given explicitly
        TranslationModule.__init__(self, lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                                   lr_interval=lr_interval, ema_decay=ema_decay)
        self.save_hyperparameters(hparams)
        if update_interval is not None and update_interval < 2:
            raise ValueError(f"update_interval must be >= 2 (1 would never update the generators) or null, "
                             f"got {update_interval}")
        if gan_mode == "wgangp":
            raise ValueError("DiscoGAN has no gradient penalty: gan_mode wgangp is not supported")
        depth = discogan_depth(image_size)
        self.netG_A = init_weights(DiscoGenerator(in_ch, out_ch, ngf, depth, norm), init_type, init_gain)
        self.netG_B = init_weights(DiscoGenerator(out_ch, in_ch, ngf, depth, norm), init_type, init_gain)
        self.netD_A = init_weights(DiscoDiscriminator(out_ch, ndf, depth, norm), init_type, init_gain)
        self.netD_B = init_weights(DiscoDiscriminator(in_ch, ndf, depth, norm), init_type, init_gain)
        self.gan = GANLoss(gan_mode)
        self.setup_ema()

    def build_optimizers(self):
        h = self.hparams
        kw = dict(lr=h.lr, betas=(h.beta1, h.beta2), weight_decay=h.weight_decay)
        return {
            "G": torch.optim.Adam([*self.netG_A.parameters(), *self.netG_B.parameters()], **kw),
            "D": torch.optim.Adam([*self.netD_A.parameters(), *self.netD_B.parameters()], **kw),
        }

    def rate(self, iteration: int | None = None) -> float:
        """The reconstruction weight at ``iteration`` (default: now); the GAN terms get 1 - rate."""
        h = self.hparams
        it = self.iteration if iteration is None else iteration
        return h.starting_rate if it < h.gan_curriculum else h.default_rate

    def updates(self, iteration: int | None = None) -> tuple[str, ...]:
        """The optimizer steps of ``iteration`` (default: now), in order."""
        k = self.hparams.update_interval
        if k is None:
            return ("G", "D")
        it = self.iteration if iteration is None else iteration
        return ("D",) if it % k == 0 else ("G",)

    def generator_losses(self, v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h, rate = self.hparams, self.rate()
        adv = 1.0 - rate
        losses = {}
        for side, netD, real, fake in (("A", self.netD_A, v["real_B"], v["fake_B"]),
                                       ("B", self.netD_B, v["real_A"], v["fake_A"])):
            pred_fake, feats_fake = netD.forward_features(fake)
            _, feats_real = netD.forward_features(real)
            losses[f"G_{side}"] = self.gan(pred_fake, True, for_discriminator=False) * h.gan_weight * adv
            losses[f"fm_{side}"] = feature_matching_loss(feats_real, feats_fake) * h.fm_weight * adv
        for side in ("A", "B"):  # the official MSE is on [0, 1] images
            losses[f"cycle_{side}"] = recon_loss((v[f"rec_{side}"] + 1) / 2, (v[f"real_{side}"] + 1) / 2, "mse") * rate
        return losses

    def training_step(self, batch, batch_idx):
        steps, rate = self.updates(), self.rate()
        logs: dict[str, torch.Tensor] = {}
        if "G" in steps:
            v = self.forward_cycle(batch["A"], batch["B"])
            g = self.generator_losses(v)
            loss_G = sum(g.values())
            self.step("G", loss_G)
            logs.update(G=loss_G, **g)
            fake_B, fake_A = v["fake_B"].detach(), v["fake_A"].detach()
        else:
            with torch.no_grad():
                fake_B, fake_A = self.netG_A(batch["A"]), self.netG_B(batch["B"])
        if "D" in steps:
            loss_D_A = self.discriminator_loss(self.netD_A, batch["B"], fake_B)
            loss_D_B = self.discriminator_loss(self.netD_B, batch["A"], fake_A)
            loss_D = loss_D_A + loss_D_B
            self.step("D", loss_D)
            logs.update(D=loss_D, D_A=loss_D_A, D_B=loss_D_B)
        self.log_losses(logs)
        if self.logging_step():
            self.log("train/rate", rate, on_step=True, on_epoch=False)
