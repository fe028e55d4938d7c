"""Fader networks: Lample, Zeghidour, Usunier, Bordes, Denoyer, Ranzato, "Fader Networks:
Manipulating Images by Sliding Attributes", NIPS 2017. Follows facebookresearch/FaderNetworks at
cdd9e50 (``train.py``, ``src/model.py``, ``src/training.py``, ``src/utils.py``, ``interpolate.py``).

One binary attribute per run, from the suite's two domains: A = images without it (a = 0), B =
images with it (a = 1), one-hot y = [1 - a, a] (the official ``attr`` with 2 categories). A batch
{"A", "B"} is trained as one batch of both (or {"image", "label"} with 0/1 labels).

Networks (``nets/fader.py``, BatchNorm): encoder E = the content skeleton's ``ConvEncoder`` with
Fader's widths (256x256: 32 .. 512, 6 layers, a 512 x 4 x 4 code; no norm on layer 0); decoder D(z, y)
with y tiled and concatenated to the input of every layer; latent discriminator C (the encoder's
remaining layers down to 1 x 1 with dropout 0.3, then a 2-layer MLP to 2 logits); optional patch
discriminator P. Official 256x256 counts: E + D 14,000,512, C 8,655,362, P 695,137 (tested).
lambda(t) = lambda * min(t, lambda_schedule) / lambda_schedule at iteration t (0-based; the ramp).

| term | formula | weight (default) |
|---|---|---|
| loss_rec | mean (D(E(x), y) - x)^2 | lambda_ae = 1 |
| loss_lat_enc | CE(C(E(x)), 1 - a): the encoder pushes C to the *other* value | lambda_lat_dis(t), 1e-4 ramped over 500,000 iterations |
| loss_ptc_enc | BCE(P(D(E(x), y~)), 1 - smooth_label), y~ random | lambda_ptc_dis(t) = 0 (off, as the paper) |
| loss_G | the sum of the three | |
| loss_D (latent) | CE(C(E(x)), a), E in eval mode, no gradient to E | 1 |
| loss_P (patch) | BCE(P(x), 1 - smooth_label) + BCE(P(D(E(x), y~)), smooth_label), E and D in eval mode | 1 (off: n_ptc_dis 0) |

Order per iteration, as ``train.py``: ``n_lat_dis`` (1) latent discriminator steps, ``n_ptc_dis`` (0)
patch discriminator steps, then one autoencoder step (C and P in eval mode: no dropout, BatchNorm
running statistics); every step clips the gradient norm to 5. Adam(2e-4, 0.5, 0.999) for each;
batch 32; 1000 epochs of 50,000 images (1,563 iterations each). CelebA: rows 20..198 of the aligned
178 x 218 image (a centred 178 crop), resized to 256; horizontal flip.

Inference (``translate(x, direction, reference=None, mode=None, value=None)``): the decoder with the
attribute set to a chosen value alpha, y = [1 - alpha, alpha] (the "fader"; alpha outside [0, 1]
exaggerates, as ``interpolate.py`` with ``alpha_min`` / ``alpha_max`` > 1). ``BtoA`` / mode
``remove``: alpha = 0; ``AtoB`` / mode ``add``: alpha = 1; ``value`` (a number or one per image) or
a numeric ``mode`` (``lit-i2i translate --mode 1.5``) sets alpha directly. ``reference`` is accepted
and ignored (Fader networks take no reference image). :meth:`FaderNetworks.interpolate` returns the
slider grid (N, n_values, C, H, W) over ``values`` (default: ``grid_n`` values from 1 - alpha_min to
alpha_max, as ``interpolate.py``); the run's image grids show it (columns real, rec, alpha=...).

Departures from the official code:
  - One batch per iteration serves every step (the official code draws a fresh batch of 32 for each
    discriminator step and for the autoencoder step).
  - Batches hold equal numbers of A and B images (the suite's two-domain data, e.g. 16 + 16 = 32);
    the official batches are random images of the whole dataset, so the attribute keeps its natural
    frequency.
  - The discriminators return logits / probabilities and use ``cross_entropy`` / ``binary_cross_entropy``
    as the official; the latent CE supports binary attributes only (one attribute, 2 categories):
    the official multi-attribute (``--attr Smiling,Male``) and multi-category (``Hair.3``) runs and
    the classifier discriminator (``n_clf_dis``, off in the paper) are not ported.
  - ``--instance_norm True`` (affine InstanceNorm) is not offered; BatchNorm, the default, is.
  - The official NaN check (exit on a NaN loss) and its best-model saving by a pretrained classifier
    are left to the suite (metrics callbacks, checkpoints).
Departures from the paper: the paper's encoder has 7 layers (to 512 x 2 x 2); the code, followed
here, has 6. "Label smoothing 0.2" is in the code only for the (optional) patch discriminator; the
latent discriminator is trained with plain cross-entropy, as the code.

Accessory digits (``experiments/fader/digits_accessory.yaml``): a 4-layer skeleton for 32x32, and
see that config for why its lambda schedule differs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lit_i2i.errors import UserError
from lit_i2i.methods.press import ContentTransferModule
from lit_i2i.nets.fader import (
    FaderDecoder,
    FaderLatentDiscriminator,
    FaderPatchDiscriminator,
    encoder_outputs,
    fader_encoder,
)


def ramp(weight: float, iteration: int, schedule: float) -> float:
    """The official ``get_lambda``: ``weight * min(iteration, schedule) / schedule`` (``schedule`` 0: constant)."""
    if schedule == 0:
        return weight
    return weight * float(min(iteration, schedule)) / schedule


class FaderNetworks(ContentTransferModule):
    """Fader networks on the content skeleton: ``encoder`` (a ``ConvEncoder``), ``decoder``, latent
    discriminator ``disc`` (optimizer ``D``), optional patch discriminator ``ptc_disc`` (``P``)."""

    method_name = "fader"
    ops = {"AtoB": ("add", False), "BtoA": ("remove", False), "add": ("add", False), "remove": ("remove", False)}

    def __init__(self, image_size: int = 256, n_layers: int = 6, init_fm: int = 32, max_fm: int = 512, in_ch: int = 3,
                 n_skip: int = 0, deconv_method: str = "convtranspose", hid_dim: int = 512, dec_dropout: float = 0.0,
                 lat_dis_dropout: float = 0.3, n_lat_dis: int = 1, n_ptc_dis: int = 0, smooth_label: float = 0.2,
                 lambda_ae: float = 1.0, lambda_lat_dis: float = 0.0001, lambda_ptc_dis: float = 0.0,
                 lambda_schedule: float = 500000, lr: float = 2e-4, disc_lr: float = 2e-4, beta1: float = 0.5,
                 beta2: float = 0.999, clip_grad: float | None = 5.0, attribute: str = "attribute",
                 grid_alpha_min: float = 1.0, grid_alpha_max: float = 1.0, grid_n: int = 10,
                 lr_policy: str = "constant", n_epochs: int = 100, n_epochs_decay: int = 100, lr_interval: str = "epoch"):
        super().__init__(image_size, n_layers, lambda_lat_dis, clip_grad, lr_policy, n_epochs, n_epochs_decay, lr_interval)
        self.save_hyperparameters()
        if not 0 <= smooth_label < 0.5:
            raise ValueError(f"smooth_label must be in [0, 0.5), got {smooth_label}")
        if lambda_lat_dis and n_lat_dis < 1:
            raise ValueError("lambda_lat_dis > 0 needs n_lat_dis >= 1 (a latent discriminator to fool)")
        if lambda_ptc_dis and n_ptc_dis < 1:
            raise ValueError("lambda_ptc_dis > 0 needs n_ptc_dis >= 1")
        if grid_n < 2:
            raise ValueError(f"grid_n must be >= 2, got {grid_n}")
        self.encoder = fader_encoder(image_size, n_layers, init_fm, max_fm, in_ch)
        self.decoder = FaderDecoder(n_layers, init_fm, max_fm, in_ch, 2, n_skip, deconv_method, dec_dropout=dec_dropout)
        self.disc = FaderLatentDiscriminator(image_size, n_layers, n_skip, init_fm, max_fm, hid_dim, lat_dis_dropout, 2)
        if n_ptc_dis:
            self.ptc_disc = FaderPatchDiscriminator(in_ch, init_fm, max_fm)

    # ------------------------------------------------------------------ optimizers
    def ae_parameters(self):
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def build_optimizers(self):
        h = self.hparams
        betas = (h.beta1, h.beta2)
        opts = {}
        if h.n_lat_dis:
            opts["D"] = torch.optim.Adam(self.disc.parameters(), lr=h.disc_lr, betas=betas)
        if h.n_ptc_dis:
            opts["P"] = torch.optim.Adam(self.ptc_disc.parameters(), lr=h.disc_lr, betas=betas)
        opts["G"] = torch.optim.Adam(self.ae_parameters(), lr=h.lr, betas=betas)
        return opts

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def one_hot(a: torch.Tensor) -> torch.Tensor:
        """[1 - a, a] per image: a 0/1 label gives the one-hot vector, a real alpha the fader's value."""
        a = a.float().view(-1, 1)
        return torch.cat([1 - a, a], 1)

    def inputs(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, 0/1 attribute labels) of a training batch."""
        if "A" in batch and "B" in batch:
            a, b = batch["A"], batch["B"]
            return torch.cat([a, b]), torch.cat([a.new_zeros(len(a)), b.new_ones(len(b))]).long()
        if "image" in batch and "label" in batch:
            label = batch["label"].long().view(-1)
            if ((label != 0) & (label != 1)).any():
                raise UserError("FaderNetworks trains one binary attribute: batch labels must be 0 or 1")
            return batch["image"], label
        raise UserError("FaderNetworks needs batches of two domains {'A', 'B'} or {'image', 'label'}")

    def code(self, enc_outputs: list[torch.Tensor]) -> torch.Tensor:
        """What the latent discriminator sees: the encoder output before the ``n_skip`` skipped layers."""
        return enc_outputs[-1 - self.hparams.n_skip]

    def lambda_lat(self, iteration: int | None = None) -> float:
        h = self.hparams
        return ramp(h.lambda_lat_dis, self.iteration if iteration is None else iteration, h.lambda_schedule)

    def lambda_ptc(self, iteration: int | None = None) -> float:
        h = self.hparams
        return ramp(h.lambda_ptc_dis, self.iteration if iteration is None else iteration, h.lambda_schedule)

    def random_attributes(self, n: int, device) -> torch.Tensor:
        """The official ``flip_attributes(y, 'all')``: a uniformly random category per image."""
        return self.one_hot(torch.randint(0, 2, (n,)).to(device))

    def smooth_bce(self, p: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy(p.float(), torch.full_like(p.float(), target))

    # ------------------------------------------------------------------ the steps
    def latent_discriminator_loss(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        was = self.encoder.training
        self.encoder.eval()  # the official lat_dis_step: ae.eval()
        with torch.no_grad():
            z = self.code(encoder_outputs(self.encoder, x))
        self.encoder.train(was)
        self.disc.train()
        return F.cross_entropy(self.disc(z).float(), label)

    def patch_discriminator_loss(self, x: torch.Tensor) -> torch.Tensor:
        was = self.encoder.training, self.decoder.training
        self.encoder.eval(), self.decoder.eval()
        with torch.no_grad():
            fake = self.decoder(encoder_outputs(self.encoder, x), self.random_attributes(len(x), x.device))
        self.encoder.train(was[0]), self.decoder.train(was[1])
        self.ptc_disc.train()
        s = self.hparams.smooth_label
        return self.smooth_bce(self.ptc_disc(x), 1 - s) + self.smooth_bce(self.ptc_disc(fake), s)

    def autoencoder_losses(self, x: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.hparams
        self.encoder.train(), self.decoder.train()
        self.disc.eval()
        if h.n_ptc_dis:
            self.ptc_disc.eval()
        enc = encoder_outputs(self.encoder, x)
        rec = self.decoder(enc, self.one_hot(label))
        terms = {"rec": h.lambda_ae * ((x.float() - rec.float()) ** 2).mean()}
        if h.lambda_lat_dis:
            terms["lat_enc"] = self.lambda_lat() * F.cross_entropy(self.disc(self.code(enc)).float(), 1 - label)
        if h.lambda_ptc_dis:
            fake = self.decoder(enc, self.random_attributes(len(x), x.device))
            terms["ptc_enc"] = self.lambda_ptc() * self.smooth_bce(self.ptc_disc(fake), 1 - h.smooth_label)
        return terms

    def training_step(self, batch, batch_idx):
        h = self.hparams
        x, label = self.inputs(batch)
        self._check_size(x)
        logs = {}
        for _ in range(h.n_lat_dis):
            logs["D"] = self.latent_discriminator_loss(x, label)
            self.step("D", logs["D"], clip=h.clip_grad)
        for _ in range(h.n_ptc_dis):
            logs["P"] = self.patch_discriminator_loss(x)
            self.step("P", logs["P"], clip=h.clip_grad)
        terms = self.autoencoder_losses(x, label)
        loss_G = sum(terms.values())
        self.step("G", loss_G, clip=h.clip_grad)
        self.train()  # leave every net in training mode, whatever the steps set
        self.log_losses({"G": loss_G, **terms, **logs})
        if self.logging_step():
            self.log("train/lambda_lat_dis", self.lambda_lat(), on_step=True, on_epoch=False)

    # ------------------------------------------------------------------ the fader
    def fader(self, x: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        """Decode ``x`` with the attribute set to ``alpha`` (a number, or one per image)."""
        a = torch.as_tensor(alpha, dtype=x.dtype, device=x.device)
        a = a.expand(len(x)) if a.dim() == 0 else a.view(-1)
        if len(a) != len(x):
            raise UserError(f"value: {len(a)} attribute values for {len(x)} images")
        return self.decoder(encoder_outputs(self.encoder, x), self.one_hot(a))

    def add(self, x, reference=None):
        return self.fader(x, 1.0)

    def remove(self, x, reference=None):
        return self.fader(x, 0.0)

    def grid_values(self) -> list[float]:
        h = self.hparams
        return [float(v) for v in np.linspace(1 - h.grid_alpha_min, h.grid_alpha_max, h.grid_n)]

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None,
                  mode: str | None = None, value: float | torch.Tensor | None = None) -> torch.Tensor:
        if value is None and mode is not None and mode not in self.ops:
            try:
                value = float(mode)
            except ValueError:
                raise UserError(f"{type(self).__name__}: unknown mode {mode!r}; choose add, remove or an attribute "
                                "value such as 0.5 or 1.5") from None
        if value is not None:
            self._check_size(x)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"value must be finite, got {value}")
            return self.fader(x, value)
        return super().translate(x, direction, None, mode)

    @torch.no_grad()
    def interpolate(self, x: torch.Tensor, values=None) -> torch.Tensor:
        """The slider grid (N, len(values), C, H, W): ``x`` decoded at each attribute value."""
        self._check_size(x)
        values = self.grid_values() if values is None else list(values)
        enc = encoder_outputs(self.encoder, x)
        return torch.stack([self.decoder(enc, self.one_hot(torch.full((len(x),), float(v), device=x.device)))
                            for v in values], 1)

    @torch.no_grad()
    def visuals(self, batch):
        """Rows: A images then B images; columns: input, reconstruction with its own attribute, the slider."""
        x, label = self.inputs({k: v for k, v in batch.items() if k in ("A", "B", "image", "label")})
        if "A" in batch and "B" in batch:  # half of each domain, so the grid's first rows show both
            n = len(batch["A"])
            keep = torch.cat([torch.arange(n - n // 2), n + torch.arange(n // 2)]).to(x.device)
            x, label = x[keep], label[keep]
        enc = encoder_outputs(self.encoder, x)
        out = {"real": x, "rec": self.decoder(enc, self.one_hot(label))}
        for v in self.grid_values():
            out[f"alpha={v:g}"] = self.decoder(enc, self.one_hot(torch.full((len(x),), v, device=x.device)))
        return out


__all__ = ["FaderNetworks", "ramp"]
