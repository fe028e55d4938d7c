"""Mokady, Benaim, Wolf, Bermano, "Mask Based Unsupervised Content Transfer", ICLR 2020. Follows
rmokady/mbu-content-tansfer (df703c6: ``mask_train.py``, ``mask_models.py``, ``mask_utils.py``,
``removal.py``, ``preprocess.py``, the README's per-task hyperparameters).

Domains (this suite's convention, the paper's): A = WITHOUT the content, B = WITH it. The official
code swaps the letters (its A has the content); below, "w" = with content (our B, code A), "o" =
without (our A, code B).

Networks (``lit_i2i.nets.content``, BatchNorm): e1 (487 channels at 2x2), e2 (widths capped at 128,
25 channels), D_A (plain decoder, BN + LeakyReLU 0.2, tanh), D_B (same trunk, 4 output channels:
mask m = sigmoid(ch 0), content c = tanh(ch 1-3)); composite(m, c, y) = m*c + (1-m)*y; latent
discriminator on e1 codes (1948 -> 512 -> 1).

| term | formula | weight (eyewear default) |
|---|---|---|
| loss_recon1_B | L1(composite(D_B(e1(b), e2(b)), D_A(e1(b), 0)), b) | gamma = 7 |
| loss_recon1_A | L1(D_A(e1(a), 0), a) | delta = 5 |
| loss_recon2_B | L1(composite(D_B(e1(b), e2(b)), b), b) | alpha1 = 0.7 |
| loss_recon2_A | L1(composite(D_B(e1(a), 0), a), a) | alpha2 = 0.7 |
| loss_cycle_common | MSE(e1(C), e1(a)), C = composite(D_B(e1(a), e2(b)), a) | beta1 = 0 |
| loss_cycle_separate | MSE(e2(C), e2(b)) | beta2 = 0.001 |
| loss_confusion | BCE(D(e1(b)), 0) + BCE(D(e1(a)), 0) | disc_weight = 0.005 |
| loss_D | BCE(D(e1(b)), 1) + BCE(D(e1(a)), 0), codes recomputed after the autoencoder step | 1 |

(The README maps alpha1 to the paper's Recon2^B and alpha2 to Recon2^A, i.e. swapped relative to the
code; the weights here are attached to the terms as the code computes them.) Per-task weights
(README): smile alpha 1/1, beta2 1e-4; black->blond hair alpha 0.1/0.1, beta2 0.04, gamma 1, delta 1,
disc 1.0; dark hair->bald alpha 0.5/0.5, beta2 0.5, gamma 5, delta 5, disc 1.0. No explicit mask
sparsity term: small masks come from the Recon2 terms.

Order per iteration, as ``mask_train.py``: autoencoder step (e1, e2, D_A, D_B; grad norm clipped to
5), then discriminator step (clipped to 5). Adam(2e-4, (0.5, 0.999)) for both; constant LR; batch
32; 150k iterations (300k ``trainer.max_steps``). CelebA: plain Resize to 128x128 (no center crop),
horizontal flip.

Inference (``translate(x, direction, reference=None, mode=None)``):
  - ``AtoB`` / mode ``transfer``: composite(D_B(e1(x), e2(reference)), x); without a reference
    ``AtoB`` uses e2 codes of recent training B images (a checkpointed bank);
  - ``BtoA`` / mode ``removal``: m = [mask of D_B(e1(x), e2(x)) >= removal_threshold (0.1)];
    D_A(e1(x), 0) * m + x * (1 - m): the removed region is pasted from D_A's output;
  - mode ``mask``: the soft mask of D_B(e1(x), e2(x)) as a 3-channel image in [-1, 1]
    (:meth:`mask` gives it in [0, 1], 1 channel).

Departures from the official code:
  - ``removal.py`` feeds D_A the full code [e1(x), e2(x)], which D_A never receives in training (it
    is trained on [e1, 0] only); here D_A gets [e1(x), 0], the paper's D_A(E(b), 0).
    ``removal_code: full`` restores the official call.
  - D_B(e1(b), e2(b)) is computed once and composited over both backgrounds (the code runs it twice,
    so its BatchNorm running statistics see that batch twice; same outputs and gradients).
  - BCE-with-logits on a logit-output discriminator (official: sigmoid + BCELoss); same values.
  - The mask is one channel broadcast over the image (the code repeats it to 3): same composite/losses.
  - Batches pair each A image with a random B image; the real-data configs use the official CelebA
    partition, not the first 64 images of each domain (``--data.init_args.test_size 64``).
"""

from __future__ import annotations

import torch

from lit_i2i.core.losses import recon_loss
from lit_i2i.methods.press import ContentTransferModule
from lit_i2i.nets.content import (LatentDiscriminator, SeparateCodeBank, build_decoder, build_encoder,
                                  common_channels, composite)


class MBU(ContentTransferModule):
    method_name = "mbu"
    ops = {"AtoB": ("transfer", False), "BtoA": ("removal", False), "transfer": ("transfer", True),
           "removal": ("removal", False), "mask": ("mask_image", False)}

    def __init__(self, image_size: int = 128, depth: int = 6, ngf: int = 32, dim: int = 512, sep: int = 25,
                 e2_max_channels: int = 128, disc_hidden: int = 512, norm: str = "batch",
                 alpha1: float = 0.7, alpha2: float = 0.7, beta1: float = 0.0, beta2: float = 0.001,
                 gamma: float = 7.0, delta: float = 5.0, disc_weight: float = 0.005,
                 removal_threshold: float = 0.1, removal_code: str = "zero",
                 lr: float = 2e-4, disc_lr: float = 2e-4, adam_beta1: float = 0.5, adam_beta2: float = 0.999,
                 clip_grad: float | None = 5.0, bank_size: int = 64, init_type: str = "none",
                 init_gain: float = 0.02, lr_policy: str = "constant", n_epochs: int = 100,
                 n_epochs_decay: int = 100, lr_interval: str = "epoch"):
        super().__init__(image_size, depth, disc_weight, clip_grad, lr_policy, n_epochs, n_epochs_decay, lr_interval)
        if removal_code not in ("zero", "full"):
            raise ValueError(f"removal_code must be 'zero' or 'full', got {removal_code!r}")
        self.save_hyperparameters()
        net = dict(depth=depth, ngf=ngf, dim=dim, sep=sep, norm=norm, init_type=init_type, init_gain=init_gain)
        self.e1 = build_encoder("common", n_separate=1, **net)
        self.e2 = build_encoder("separate", max_ch=e2_max_channels, **net)
        dec = dict(norm=norm, act="lrelu", init_type=init_type, init_gain=init_gain)
        self.d_a = build_decoder(depth, ngf, dim, **dec)
        self.d_b = build_decoder(depth, ngf, dim, mask=True, **dec)
        common = common_channels(depth, ngf, dim, sep, 1)[-1]
        self.disc = LatentDiscriminator(common * self.side ** 2, disc_hidden, init_type, init_gain)
        self.bank_B = SeparateCodeBank(bank_size, (sep, self.side, self.side))

    # Adam's betas are adam_beta1/adam_beta2 here: beta1/beta2 are the cycle weights (code and README names).
    def build_optimizers(self):
        h = self.hparams
        betas = (h.adam_beta1, h.adam_beta2)
        return {"G": torch.optim.Adam(self.ae_parameters(), lr=h.lr, betas=betas),
                "D": torch.optim.Adam(self.disc.parameters(), lr=h.disc_lr, betas=betas)}

    def zeros(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hparams.sep, self.side, self.side)

    def ae_losses(self, a, b):
        h = self.hparams
        c_w, s_w, c_o = self.e1(b), self.e2(b), self.e1(a)
        m_w, content_w = self.d_b(torch.cat([c_w, s_w], 1))
        background_w = self.d_a(torch.cat([c_w, self.zeros(b)], 1))
        rec_a = self.d_a(torch.cat([c_o, self.zeros(a)], 1))
        m_c, content_c = self.d_b(torch.cat([c_o, s_w], 1))
        transfer = composite(m_c, content_c, a)
        m_o, content_o = self.d_b(torch.cat([c_o, self.zeros(a)], 1))
        terms = {
            "recon1_B": h.gamma * recon_loss(composite(m_w, content_w, background_w), b, "l1"),
            "recon1_A": h.delta * recon_loss(rec_a, a, "l1"),
            "recon2_B": h.alpha1 * recon_loss(composite(m_w, content_w, b), b, "l1"),
            "recon2_A": h.alpha2 * recon_loss(composite(m_o, content_o, a), a, "l1"),
            # the code computes both cycle terms whatever their weights (e1's BatchNorm statistics see C)
            "cycle_common": h.beta1 * recon_loss(self.e1(transfer), c_o, "mse"),
            "cycle_separate": h.beta2 * recon_loss(self.e2(transfer), s_w, "mse"),
        }
        if h.disc_weight > 0:
            terms["confusion"] = h.disc_weight * self.confusion_loss(c_w, c_o)
        return terms, {"bank": {"bank_B": s_w}, "mask_B": m_w, "transfer": transfer}

    def disc_codes(self, a, b):
        return self.e1(b), self.e1(a)  # with content -> 1, without -> 0

    # ------------------------------------------------------------------ inference
    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """Soft mask of x's own content, D_B(e1(x), e2(x)), (N, 1, H, W) in [0, 1]."""
        return self.d_b(torch.cat([self.e1(x), self.e2(x)], 1))[0]

    def mask_image(self, x, reference=None):
        return (self.mask(x) * 2 - 1).expand(-1, 3, -1, -1)

    def transfer(self, x, reference=None):
        s = self.e2(reference) if reference is not None else self.bank_B.sample(x.shape[0]).to(x)
        m, content = self.d_b(torch.cat([self.e1(x), s], 1))
        return composite(m, content, x)

    def removal(self, x, reference=None):
        c, s = self.e1(x), self.e2(x)
        hard = (self.d_b(torch.cat([c, s], 1))[0] >= self.hparams.removal_threshold).to(x.dtype)
        background = self.d_a(torch.cat([c, s if self.hparams.removal_code == "full" else self.zeros(x)], 1))
        return background * hard + x * (1 - hard)

    @torch.no_grad()
    def visuals(self, batch):
        a, b = batch["A"], batch["B"]
        m_t, _ = self.d_b(torch.cat([self.e1(a), self.e2(b)], 1))
        return {"real_A": a, "real_B": b,
                "transfer_AtoB": self.translate(a, "AtoB", reference=b),
                "mask_transfer": m_t * 2 - 1,
                "removal_BtoA": self.translate(b, "BtoA"),
                "mask_B": self.mask(b) * 2 - 1,
                "D_A_B": self.d_a(torch.cat([self.e1(b), self.zeros(b)], 1))}
