"""Press, Galanti, Benaim, Wolf, "Emerging Disentanglement in Auto-Encoder Based Unsupervised Image
Content Transfer", ICLR 2019. Follows oripress/ContentDisentanglement (d3de059: ``train.py``,
``models.py``, ``preprocess.py``).

Domains (this suite's convention, the paper's): A = images WITHOUT the content (no glasses), B =
images WITH it. The official code swaps the letters (its A has the attribute); its labels are
mapped here by meaning, not by letter.

Networks (``lit_i2i.nets.content``, InstanceNorm): common encoder e1 (487 channels at 2x2 for 128x128,
sep = 25), small separate encoder e2 (widths capped at 128, 25 channels: 100 dims), one decoder g
(512 -> ... -> 3, tanh), latent discriminator on the e1 code (1948 -> 512 -> 1).
Codes: b in B -> [e1(b), e2(b)]; a in A -> [e1(a), 0].

| term | formula | weight (default) |
|---|---|---|
| loss_recon_B | MSE(g(e1(b), e2(b)), b) | 1 |
| loss_recon_A | MSE(g(e1(a), 0), a) | 1 |
| loss_confusion | BCE(D(e1(b)), 0) + BCE(D(e1(a)), 0) (the encoder pushes both domains to "without") | disc_weight = 0.001 |
| loss_D | BCE(D(e1(b)), 1) + BCE(D(e1(a)), 0), codes recomputed after the autoencoder step | 1 |

Order per iteration, as ``train.py``: one autoencoder step (e1, e2, g; gradient norm clipped to 5),
then one discriminator step (clipped to 5); the discriminator step is skipped when disc_weight is 0.
Adam(2e-4, betas (0.5, 0.999)) for both; constant learning rate; batch 32 per domain; 1.25M
iterations (``trainer.max_steps`` counts both optimizers' steps: 2.5M). CelebA aligned: CenterCrop
178, Resize 128, random horizontal flip.

Inference (``translate(x, direction, reference=None, mode=None)``):
  - ``AtoB`` / mode ``transfer``: g(e1(x), e2(reference)), x from A, the reference from B. With no
    reference (metrics, ``lit-i2i translate`` without ``--reference``), ``AtoB`` uses e2 codes of
    recent training B images (a checkpointed bank; item i takes bank code i mod size); mode
    ``transfer`` insists on a reference.
  - ``BtoA`` / mode ``removal``: g(e1(x), 0).

Departures from the official code:
  - The latent discriminator outputs logits and the losses are BCE-with-logits (official: sigmoid +
    ``BCELoss``); same values.
  - The discriminator step recomputes the e1 codes without building their graph (the official code
    builds it; only the discriminator is stepped, so the update is the same).
  - Batches pair every A image with a random B image per epoch (``UnpairedDataset``), where the
    official code zips two shuffled loaders (an epoch there is min(|A|, |B|) / 32 iterations).
  - The real-data configs use the official CelebA partition (``list_eval_partition.txt``) where the
    code takes the first 64 images of each domain as its test set (``--data.init_args.test_size 64``
    restores that split).
  - ``depth`` / ``ngf`` / ``dim`` make the same skeleton run at other sizes (32x32 digits: depth 4).
Departures from the paper: none known; the paper's "smile" experiment is ``Mouth_Slightly_Open`` in
the code, which the smile config follows.

``ContentTransferModule`` below is the skeleton the three Wolf-lab methods share (the two optimizer
steps, latent confusion, clipping, the reference bank, mode dispatch); DIDD and MBU extend it.
"""

from __future__ import annotations

import torch

from lit_i2i.core.losses import GANLoss, recon_loss
from lit_i2i.core.module import TranslationModule
from lit_i2i.errors import UserError
from lit_i2i.nets.content import (LatentDiscriminator, SeparateCodeBank, build_decoder, build_encoder,
                                  common_channels, code_size)


class ContentTransferModule(TranslationModule):
    """Shared skeleton: ``ae_losses`` (autoencoder step), ``disc_codes`` (the two code batches the
    latent discriminator labels 1 and 0), ``ops`` (translate modes). Optimizers ``G`` (every
    autoencoder net) then ``D`` (the latent discriminator)."""

    #: translate op name -> (method, whether an explicit reference is required)
    ops: dict[str, tuple[str, bool]] = {}
    directions = ("AtoB", "BtoA")

    def __init__(self, image_size: int, depth: int, disc_weight: float, clip_grad: float | None,
                 lr_policy: str, n_epochs: int, n_epochs_decay: int, lr_interval: str):
        super().__init__(lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                         lr_interval=lr_interval, ema_decay=None)
        self.side = code_size(image_size, depth)
        self.image_size = image_size
        self.bce = GANLoss("vanilla")  # BCE with logits: target 1 for True, 0 for False

    # ------------------------------------------------------------------ optimizers
    def ae_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("disc.")]

    def build_optimizers(self):
        h = self.hparams
        betas = (h.beta1, h.beta2)
        return {"G": torch.optim.Adam(self.ae_parameters(), lr=h.lr, betas=betas),
                "D": torch.optim.Adam(self.disc.parameters(), lr=h.disc_lr, betas=betas)}

    # ------------------------------------------------------------------ shared losses
    def confusion_loss(self, *codes: torch.Tensor) -> torch.Tensor:
        """The encoder's side: every code batch pushed to the discriminator's label 0."""
        return sum(self.bce(self.disc(c), False) for c in codes)

    def discriminator_loss(self, code_one: torch.Tensor, code_zero: torch.Tensor) -> torch.Tensor:
        return self.bce(self.disc(code_one), True) + self.bce(self.disc(code_zero), False)

    def _check_size(self, x: torch.Tensor) -> None:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise UserError(f"{type(self).__name__} was built for {self.image_size}x{self.image_size} images, got "
                            f"{tuple(x.shape[-2:])}; set model.init_args.image_size to the data's crop size")

    # ------------------------------------------------------------------ training
    def training_step(self, batch, batch_idx):
        a, b = batch["A"], batch["B"]
        self._check_size(a)
        terms, cache = self.ae_losses(a, b)
        loss_G = sum(terms.values())
        self.step("G", loss_G, clip=self.hparams.clip_grad)
        logs = {"G": loss_G, **terms}
        if self.hparams.disc_weight > 0:
            with torch.no_grad():
                one, zero = self.disc_codes(a, b)
            loss_D = self.discriminator_loss(one, zero)
            self.step("D", loss_D, clip=self.hparams.clip_grad)
            logs["D"] = loss_D
        self.update_banks(cache)
        self.log_losses(logs)

    def ae_losses(self, a: torch.Tensor, b: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:  # pragma: no cover
        raise NotImplementedError

    def disc_codes(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def update_banks(self, cache: dict) -> None:
        for name, codes in cache.get("bank", {}).items():
            getattr(self, name).push(codes)

    # ------------------------------------------------------------------ the one door
    @staticmethod
    def _match(reference: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
        if reference is None:
            return None
        if reference.dim() == 3:
            reference = reference[None]
        if reference.shape[0] == 1 and x.shape[0] > 1:
            reference = reference.expand(x.shape[0], -1, -1, -1)
        if reference.shape[0] != x.shape[0]:
            raise UserError(f"reference batch ({reference.shape[0]}) must be 1 or match the input batch ({x.shape[0]})")
        return reference.to(x.device, x.dtype)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None,
                  mode: str | None = None) -> torch.Tensor:
        """``mode`` (when given) selects the operation, else ``direction``; see the module docstring."""
        name = mode if mode is not None else direction
        if name not in self.ops:
            what = "mode" if mode is not None else "direction"
            raise UserError(f"{type(self).__name__}: unknown {what} {name!r}; choose one of {', '.join(self.ops)}")
        fn, needs_reference = self.ops[name]
        if needs_reference and reference is None:
            raise UserError(f"{type(self).__name__}: mode {name!r} needs a reference image (--reference)")
        self._check_size(x)
        return getattr(self, fn)(x, self._match(reference, x))


class PressEtAl(ContentTransferModule):
    method_name = "press"
    ops = {"AtoB": ("transfer", False), "BtoA": ("removal", False),
           "transfer": ("transfer", True), "removal": ("removal", False)}

    def __init__(self, image_size: int = 128, depth: int = 6, ngf: int = 32, dim: int = 512, sep: int = 25,
                 e2_max_channels: int = 128, disc_hidden: int = 512, norm: str = "instance",
                 recon: str = "mse", disc_weight: float = 0.001, lr: float = 2e-4, disc_lr: float = 2e-4,
                 beta1: float = 0.5, beta2: float = 0.999, clip_grad: float | None = 5.0, bank_size: int = 64,
                 init_type: str = "none", init_gain: float = 0.02, lr_policy: str = "constant",
                 n_epochs: int = 100, n_epochs_decay: int = 100, lr_interval: str = "epoch"):
        super().__init__(image_size, depth, disc_weight, clip_grad, lr_policy, n_epochs, n_epochs_decay, lr_interval)
        self.save_hyperparameters()
        net = dict(depth=depth, ngf=ngf, dim=dim, sep=sep, norm=norm, init_type=init_type, init_gain=init_gain)
        self.e1 = build_encoder("common", n_separate=1, **net)
        self.e2 = build_encoder("separate", max_ch=e2_max_channels, **net)
        self.decoder = build_decoder(depth, ngf, dim, norm, "relu", init_type=init_type, init_gain=init_gain)
        common = common_channels(depth, ngf, dim, sep, 1)[-1]
        self.disc = LatentDiscriminator(common * self.side ** 2, disc_hidden, init_type, init_gain)
        self.bank_B = SeparateCodeBank(bank_size, (sep, self.side, self.side))

    def zeros(self, x: torch.Tensor) -> torch.Tensor:
        """The separate code of the without-content domain: exactly zero."""
        return x.new_zeros(x.shape[0], self.hparams.sep, self.side, self.side)

    def ae_losses(self, a, b):
        h = self.hparams
        c_a, c_b, s_b = self.e1(a), self.e1(b), self.e2(b)
        rec_b = self.decoder(torch.cat([c_b, s_b], 1))
        rec_a = self.decoder(torch.cat([c_a, self.zeros(a)], 1))
        terms = {"recon_B": recon_loss(rec_b, b, h.recon), "recon_A": recon_loss(rec_a, a, h.recon)}
        if h.disc_weight > 0:
            terms["confusion"] = h.disc_weight * self.confusion_loss(c_b, c_a)
        return terms, {"bank": {"bank_B": s_b}, "rec_A": rec_a, "rec_B": rec_b}

    def disc_codes(self, a, b):
        return self.e1(b), self.e1(a)  # with content -> 1, without -> 0

    # ------------------------------------------------------------------ inference
    def transfer(self, x, reference=None):
        s = self.e2(reference) if reference is not None else self.bank_B.sample(x.shape[0]).to(x)
        return self.decoder(torch.cat([self.e1(x), s], 1))

    def removal(self, x, reference=None):
        return self.decoder(torch.cat([self.e1(x), self.zeros(x)], 1))

    @torch.no_grad()
    def visuals(self, batch):
        a, b = batch["A"], batch["B"]
        return {"real_A": a, "real_B": b,
                "transfer_AtoB": self.translate(a, "AtoB", reference=b),
                "removal_BtoA": self.translate(b, "BtoA"),
                "rec_B": self.decoder(torch.cat([self.e1(b), self.e2(b)], 1)),
                "rec_A": self.removal(a)}


__all__ = ["ContentTransferModule", "PressEtAl"]
