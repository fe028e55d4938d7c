"""UNIT for unsupervised domain adaptation (Liu, Breuel, Kautz, NeurIPS 2017, section 4.2: SVHN -> MNIST,
MNIST <-> USPS). Follows mingyuliutw/UNIT ``version_02``: ``COCOGANDAContextTrainer``
(``trainers/cocogan_trainer_da.py``), ``CoVAE32x32`` / ``CoDis32x32`` (``lit_i2i.nets.covae``),
``exps/unit/svhn2mnist.yaml``, ``cocogan_train_domain_adaptation.py``.

A coupled VAE-GAN on the labelled source A and the unlabelled target B, whose discriminator's shared
high-level layers also feed a digit classifier trained on A's labels; because those layers see both
domains (and the generator ties them through the shared latent), the classifier reads B too. The
number reported is that classifier's accuracy on B's test images (``metrics: [cls_acc]`` ->
``cls_acc_B``).

| term | formula | weight (default, svhn2mnist.yaml) |
|---|---|---|
| D: ad_true | CE(D(a ⊕ b), real) (one batch of both domains, 2 logits) | gan_w = 1 |
| D: ad_fake | ½ [CE(D(x_ba ⊕ x_ab), fake) + CE(D(x_aa ⊕ x_bb), fake)] | gan_w |
| D: cls | CE(C(a), label_a) (C: D's shared layers + a 10-way head) | cls_w = 10 |
| D: feature | Σ (h3(x_ab) − h3(x_aa))² / N + Σ (h3(x_ba) − h3(x_bb))² / N (D's dropout-free features) | feature_w = 1e-4 |
| G: ad | CE(D(x_ba ⊕ x_ab), real) + CE(D(x_aa ⊕ x_bb), real) | gan_w |
| G: kl | 2 Σ (mu² + sd² − log sd²) / (2N) | kl_w = 1e-4 |
| G: ll | Σ (x_aa − a)² / N + Σ (x_bb − b)² / N (MSE x pixels: a sum per image) | ll_w = 1e-3 |

x_ij: image of domain i translated (or, i = j, reconstructed) to domain j, from z = mu + sd·ε
(``sd`` = softplus). Per iteration: the D step (fakes from a generator forward, the G update then
frozen), then the G step on a fresh forward. Adam(2e-4, (0.5, 0.999), weight decay 5e-4) for both;
constant LR; batch 64 per domain; 200,000 iterations. Initialisation as the official trainer: D's
convs Xavier-uniform (gain √2) with bias 0.1, G's convs N(0, 0.02) (biases of the hidden convs at
PyTorch's default; the latent convs' biases N(0, 0.002), the ``Bias2d`` biases N(0, 0.002)). With
``context`` (the ``ContextTrainer``) the generator reads two extra input channels, the x and y pixel
coordinates in [-1, 1).

Departures from the official code:
  - ``invert_b``: each target image is inverted (−x) with probability ½ in every batch; the code
    instead doubles MNIST with an inverted copy of every image (the same distribution, not the same
    epochs).
  - The official script keeps the checkpoint with the best test accuracy, measured on the test set
    every 100 iterations (an optimistic selection); here the number is that of the final model.
  - The source is SVHN's ``train`` split (73,257 images) where the code reads ``extra`` (531,131), as
    the suite's SVHN loader reads train and test.
  - ``translate`` runs the generator in eval mode on one domain alone (BatchNorm's running statistics
    of the joint batches); the official code has no translation script for this trainer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lit_i2i.core.module import TranslationModule
from lit_i2i.errors import UserError
from lit_i2i.nets.covae import CoDis32x32, CoVAE32x32


def _sum_sq(x: torch.Tensor) -> torch.Tensor:
    """The official ``_compute_ll_loss(a, 0)``: MSE x C x H x W, i.e. the squared error summed per sample."""
    return x.float().pow(2).flatten(1).sum(1).mean()


def _init(gen: torch.nn.Module, dis: torch.nn.Module) -> None:
    for m in dis.modules():  # xavier_weights_init: every class with 'Conv' in its name
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.xavier_uniform_(m.weight, gain=2 ** 0.5)
            torch.nn.init.constant_(m.bias, 0.1)
    for m in gen.modules():  # gaussian_weights_init: Conv* weights only
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)


class UNITDomainAdaptation(TranslationModule):
    method_name = "unit_da"
    directions = ("AtoB", "BtoA")

    def __init__(self, a_ch: int = 3, b_ch: int = 3, gen_ch: int = 96, dis_ch: int = 64, num_classes: int = 10,
                 context: bool = True, image_size: int = 32, gan_w: float = 1.0, kl_w: float = 1e-4,
                 ll_w: float = 1e-3, feature_w: float = 1e-4, cls_w: float = 10.0, invert_b: bool = True,
                 lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999, weight_decay: float = 5e-4):
        super().__init__(lr_policy="constant", lr_interval="step")
        self.save_hyperparameters()
        self._labels_checked = False  # the source labels are checked on this module's first training batch
        if image_size != 32:
            raise ValueError("UNIT's domain-adaptation networks are for 32x32 images (CoVAE32x32 / CoDis32x32)")
        extra = 2 if context else 0
        self.gen = CoVAE32x32(gen_ch, a_ch + extra, a_ch, b_ch + extra, b_ch)
        self.dis = CoDis32x32(dis_ch, a_ch, b_ch, num_classes)
        _init(self.gen, self.dis)
        ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        # the official _create_xy_image: channel 0 = row, channel 1 = column, (i - 16) / 16
        self.register_buffer("xy", torch.stack([ys, xs]) / 16 - 1, persistent=False)

    def build_optimizers(self):
        h = self.hparams
        kw = dict(lr=h.lr, betas=(h.beta1, h.beta2), weight_decay=h.weight_decay)
        return {"D": torch.optim.Adam(self.dis.parameters(), **kw), "G": torch.optim.Adam(self.gen.parameters(), **kw)}

    def _ctx(self, x: torch.Tensor) -> torch.Tensor:
        if not self.hparams.context:
            return x
        return torch.cat([x, self.xy.to(x.dtype).expand(x.shape[0], -1, -1, -1)], 1)

    def _pass(self, a, b, sample=True):
        return self.gen(self._ctx(a), self._ctx(b), sample=sample)

    def discriminator_losses(self, a, b, labels, fakes) -> dict[str, torch.Tensor]:
        x_aa, x_ba, x_ab, x_bb = fakes
        true_res, _, _ = self.dis(a, b)
        recon_res, f_aa, f_bb = self.dis(x_aa, x_bb)
        trans_res, f_ba, f_ab = self.dis(x_ba, x_ab)
        ones, zeros = torch.ones(len(true_res), dtype=torch.long, device=a.device), torch.zeros(
            len(true_res), dtype=torch.long, device=a.device)
        return {"ad_true": F.cross_entropy(true_res.float(), ones),
                "ad_fake": 0.5 * (F.cross_entropy(trans_res.float(), zeros) + F.cross_entropy(recon_res.float(), zeros)),
                "cls": F.cross_entropy(self.dis.classify(a, "A").float(), labels),
                "feature": _sum_sq(f_ab - f_aa) + _sum_sq(f_ba - f_bb)}

    def generator_losses(self, a, b) -> dict[str, torch.Tensor]:
        x_aa, x_ba, x_ab, x_bb, mu, sd = self._pass(a, b)
        trans_res, _, _ = self.dis(x_ba, x_ab)
        recon_res, _, _ = self.dis(x_aa, x_bb)
        ones = torch.ones(len(trans_res), dtype=torch.long, device=a.device)
        mu, sd = mu.float(), sd.float()
        return {"ad": F.cross_entropy(trans_res.float(), ones) + F.cross_entropy(recon_res.float(), ones),
                "kl": 2 * (mu.pow(2) + sd.pow(2) - torch.log(sd.pow(2))).sum() / mu.shape[0],
                "ll": _sum_sq(x_aa - a) + _sum_sq(x_bb - b)}

    def training_step(self, batch, batch_idx):
        h = self.hparams
        a, b, labels = batch["A"], batch["B"], torch.as_tensor(batch["A_label"], device=self.device).long()
        if not self._labels_checked:  # on the first batch only: the check syncs with the device
            self._labels_checked = True
            if (labels < 0).any():
                raise UserError("UNIT domain adaptation trains its classifier on the source labels: domain A must "
                                "be labelled (a digit dataset or a built-in digit domain)")
        if h.invert_b:
            flip = (torch.rand(b.shape[0], 1, 1, 1, device=b.device) < 0.5).to(b.dtype)
            b = b * (1 - 2 * flip)
        with torch.no_grad():  # the D step's fakes (the official code builds them with a graph it never uses)
            fakes = self._pass(a, b)[:4]
        d = self.discriminator_losses(a, b, labels, fakes)
        loss_D = h.gan_w * (d["ad_true"] + d["ad_fake"]) + h.cls_w * d["cls"] + h.feature_w * d["feature"]
        self.step("D", loss_D)
        g = self.generator_losses(a, b)
        loss_G = h.gan_w * g["ad"] + h.kl_w * g["kl"] + h.ll_w * g["ll"]
        self.step("G", loss_G)
        self.log_losses({"G": loss_G, "D": loss_D, **{f"D_{k}": v for k, v in d.items()},
                         **{f"G_{k}": v for k, v in g.items()}})

    # ------------------------------------------------------------------ the one door, and the classifier
    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None) -> torch.Tensor:
        if direction not in self.directions:
            raise ValueError(f"UNITDomainAdaptation translates {self.directions}, not {direction!r}")
        src, tgt = ("A", "B") if direction == "AtoB" else ("B", "A")
        mu, _ = self.gen.encode(self._ctx(x), src)
        return self.gen.decode(mu, tgt)

    @torch.no_grad()
    def classify(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """Digit logits of the discriminator's classifier for images of ``domain`` (its own first layer)."""
        return self.dis.classify(x, domain)

    @torch.no_grad()
    def visuals(self, batch):
        a, b = batch["A"], batch["B"]
        x_aa, x_ba, x_ab, x_bb, _, _ = self._pass(a, b, sample=False)
        return {"real_A": a, "rec_A": x_aa, "fake_B": x_ab, "real_B": b, "rec_B": x_bb, "fake_A": x_ba}
