"""Benaim, Khaitov, Galanti, Wolf, "Domain Intersection and Domain Difference", ICCV 2019. Follows
sagiebenaim/DomainIntersectionDifference (13a492d: ``train/train.py``, ``models/models.py``,
``preprocess.py``).

Domains: both have their own content (A = smiling without glasses, B = glasses without smile; for
the built-in digits A = no accessory, B = accessory, so E^s_A has nothing of its own to encode).

Networks (``lit_i2i.nets.content``; InstanceNorm; every conv and transposed conv spectral-normed
except the decoder's output layer): common encoder E^c (... 256 -> 487 -> 462 channels at 2x2,
1848 dims; no norm after its second conv, as the official code), separate encoders E^s_A, E^s_B
(32 64 128 256 512 -> 25 channels, 100 dims each), one decoder G (512 = 462 + 25 + 25 channels in),
latent discriminator on E^c codes (1848 -> 512 -> 1).
Codes: a -> [E^c(a), E^s_A(a), 0]; b -> [E^c(b), 0, E^s_B(b)].

| term | formula | weight (default) |
|---|---|---|
| loss_recon_A | L1(G(E^c(a), E^s_A(a), 0), a) | recon_weight = 1 |
| loss_recon_B | L1(G(E^c(b), 0, E^s_B(b)), b) | recon_weight = 1 |
| loss_zero_A | L1(E^s_B(a), 0): E^s_B outputs nothing on A | zero_weight = 1 |
| loss_zero_B | L1(E^s_A(b), 0): E^s_A outputs nothing on B | zero_weight = 1 |
| loss_confusion | BCE(D(E^c(a)), 0) + BCE(D(E^c(b)), 0) | disc_weight = 0.001 |
| loss_D | BCE(D(E^c(a)), 1) + BCE(D(E^c(b)), 0), codes recomputed after the autoencoder step | 1 |

Order per iteration, as ``train.py``: autoencoder step (E^c, E^s_A, E^s_B, G; grad norm clipped to
5), then discriminator step (clipped to 5; skipped when disc_weight is 0). Adam(2e-4, (0.5, 0.999))
for both; constant LR; batch 32; 1.25M iterations (2.5M ``trainer.max_steps``). CelebA: CenterCrop
178, Resize 128, horizontal flip. Pairs (``preprocess.py``): smile/glasses, beard/glasses,
beard/smile, blond/black hair (no hat), male/female.

Inference (``translate(x, direction, reference=None, mode=None)``):
  - ``AtoB``: G(E^c(x), 0, E^s_B(reference)), x from A, reference from B;
  - ``BtoA``: G(E^c(x), E^s_A(reference), 0), x from B, reference from A;
    without a reference both use separate codes of recent training images (a checkpointed bank);
  - ``intersection``: G(E^c(x), 0, 0) (neither domain's own content), any x;
  - ``union`` (needs a reference): G(E^c(x), E^s_A(x), E^s_B(reference)), x from A, reference from B.

Departures from the official code:
  - BCE-with-logits on a logit-output discriminator (official: sigmoid + BCELoss); same values.
  - Spectral norm is PyTorch's parametrization (1 power iteration, ``dim=0``, as DIDD's reshape); it
    refreshes its power iteration only in training mode (DIDD's own refreshes in evaluation too).
  - The separate encoders' swapped InstanceNorm channel arguments are corrected (non-affine: no
    change). The missing norm after E^c's second conv is kept (``ec_layer2_norm: true`` adds it).
  - The ``one_encoding`` / ``no_flag`` ablation flags are not implemented.
  - Batches pair each A image with a random B image (the code zips two loaders and drops the last
    incomplete batch); the real-data configs use the official CelebA partition, not the first 64
    images of each domain (``--data.init_args.test_size 64`` restores it).
"""

from __future__ import annotations

import torch

from lit_i2i.core.losses import recon_loss
from lit_i2i.methods.press import ContentTransferModule
from lit_i2i.nets.content import (LatentDiscriminator, SeparateCodeBank, build_decoder, build_encoder,
                                  common_channels)


class DIDD(ContentTransferModule):
    method_name = "didd"
    ops = {"AtoB": ("to_b", False), "BtoA": ("to_a", False),
           "intersection": ("intersection", False), "union": ("union", True)}

    def __init__(self, image_size: int = 128, depth: int = 6, ngf: int = 32, dim: int = 512, sep: int = 25,
                 e2_max_channels: int = 512, disc_hidden: int = 512, norm: str = "instance",
                 spectral_norm: bool = True, ec_layer2_norm: bool = False, recon: str = "l1",
                 recon_weight: float = 1.0, zero_weight: float = 1.0, disc_weight: float = 0.001,
                 lr: float = 2e-4, disc_lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999,
                 clip_grad: float | None = 5.0, bank_size: int = 64, init_type: str = "none",
                 init_gain: float = 0.02, lr_policy: str = "constant", n_epochs: int = 100,
                 n_epochs_decay: int = 100, lr_interval: str = "epoch"):
        super().__init__(image_size, depth, disc_weight, clip_grad, lr_policy, n_epochs, n_epochs_decay, lr_interval)
        self.save_hyperparameters()
        net = dict(depth=depth, ngf=ngf, dim=dim, sep=sep, norm=norm, spectral=spectral_norm, init_type=init_type,
                   init_gain=init_gain)
        self.e_common = build_encoder("common", n_separate=2, no_norm=() if ec_layer2_norm else (1,), **net)
        self.e_sep_A = build_encoder("separate", max_ch=e2_max_channels, **net)
        self.e_sep_B = build_encoder("separate", max_ch=e2_max_channels, **net)
        self.decoder = build_decoder(depth, ngf, dim, norm, "relu", spectral=spectral_norm, init_type=init_type,
                                     init_gain=init_gain)
        common = common_channels(depth, ngf, dim, sep, 2)[-1]
        self.disc = LatentDiscriminator(common * self.side ** 2, disc_hidden, init_type, init_gain)
        shape = (sep, self.side, self.side)
        self.bank_A = SeparateCodeBank(bank_size, shape)
        self.bank_B = SeparateCodeBank(bank_size, shape)

    def zeros(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hparams.sep, self.side, self.side)

    def decode(self, common: torch.Tensor, sep_a: torch.Tensor, sep_b: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([common, sep_a, sep_b], 1))

    def ae_losses(self, a, b):
        h = self.hparams
        c_a, sa_a, sb_a = self.e_common(a), self.e_sep_A(a), self.e_sep_B(a)
        c_b, sa_b, sb_b = self.e_common(b), self.e_sep_A(b), self.e_sep_B(b)
        rec_a = self.decode(c_a, sa_a, self.zeros(a))
        rec_b = self.decode(c_b, self.zeros(b), sb_b)
        terms = {}
        if h.recon_weight > 0:
            terms["recon_A"] = h.recon_weight * recon_loss(rec_a, a, h.recon)
            terms["recon_B"] = h.recon_weight * recon_loss(rec_b, b, h.recon)
        if h.zero_weight > 0:
            terms["zero_A"] = h.zero_weight * recon_loss(sb_a, torch.zeros_like(sb_a), "l1")
            terms["zero_B"] = h.zero_weight * recon_loss(sa_b, torch.zeros_like(sa_b), "l1")
        if h.disc_weight > 0:
            terms["confusion"] = h.disc_weight * self.confusion_loss(c_a, c_b)
        return terms, {"bank": {"bank_A": sa_a, "bank_B": sb_b}, "rec_A": rec_a, "rec_B": rec_b}

    def disc_codes(self, a, b):
        return self.e_common(a), self.e_common(b)  # A -> 1, B -> 0, as the official code

    # ------------------------------------------------------------------ inference
    @staticmethod
    def _sep(encoder, bank, reference, x):
        return encoder(reference) if reference is not None else bank.sample(x.shape[0]).to(x)

    def to_b(self, x, reference=None):
        return self.decode(self.e_common(x), self.zeros(x), self._sep(self.e_sep_B, self.bank_B, reference, x))

    def to_a(self, x, reference=None):
        return self.decode(self.e_common(x), self._sep(self.e_sep_A, self.bank_A, reference, x), self.zeros(x))

    def intersection(self, x, reference=None):
        return self.decode(self.e_common(x), self.zeros(x), self.zeros(x))

    def union(self, x, reference):
        return self.decode(self.e_common(x), self.e_sep_A(x), self.e_sep_B(reference))

    @torch.no_grad()
    def visuals(self, batch):
        a, b = batch["A"], batch["B"]
        return {"real_A": a, "real_B": b,
                "AtoB": self.translate(a, "AtoB", reference=b),
                "BtoA": self.translate(b, "BtoA", reference=a),
                "intersection_A": self.translate(a, mode="intersection"),
                "intersection_B": self.translate(b, mode="intersection"),
                "union": self.translate(a, mode="union", reference=b)}
