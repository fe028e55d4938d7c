"""CUT and FastCUT: Park, Efros, Zhang, Zhu, "Contrastive Learning for Unpaired Image-to-Image
Translation", ECCV 2020. Follows taesungp/contrastive-unpaired-translation at b3ac297
(``models/cut_model.py``, ``models/networks.py``, ``models/patchnce.py``, ``options/*.py``).

One-sided: a generator G: X -> Y (``direction`` AtoB, or BtoA as the official ``--direction``), a
PatchGAN D on Y and the patch sampler F (one MLP per NCE layer). Networks (``nets/antialias.py``,
``nets/patch_sample.py``): resnet_9blocks with anti-aliased down/upsampling, InstanceNorm, no
dropout; the anti-aliased 70x70 PatchGAN (``basic``); F = Linear(C, 256), ReLU, Linear(256, 256) per
layer; all initialised ``xavier`` with gain 0.02 (official counts: G 11,378,179, D 2,764,737,
F 560,384; tested). x is the source batch, y the target batch, enc_l(.) the output of G's module l.

| term | formula | weight (CUT / FastCUT) |
|---|---|---|
| loss_G_GAN | LSGAN(D(G(x)), real) | lambda_GAN = 1 / 1 |
| loss_NCE | (1/L) sum_l mean_patches PatchNCE(F_l(enc_l(G(x))), F_l(enc_l(x))), l in nce_layers 0,4,8,12,16 | lambda_NCE = 1 / 10 |
| loss_NCE_Y | the same with y and G(y) (identity NCE) | lambda_NCE, on / off (``nce_idt``) |
| loss_G | loss_G_GAN + ½ (loss_NCE + loss_NCE_Y) with nce_idt, else loss_G_GAN + loss_NCE | |
| loss_D | ½ [LSGAN(D(G(x)), fake) + LSGAN(D(y), real)] | 1 |

PatchNCE (``core/nce.py``): 256 locations per layer, the same for every image of the batch and for
query and key; temperature 0.07; negatives from the same image (``nce_includes_all_negatives_from_minibatch``:
the whole batch, the SinCUT setting). FastCUT also has ``flip_equivariance``: with probability ½ per
iteration the input batch is flipped left-right before G, and the query features are flipped back
before they are compared with the unflipped input's keys. Order per iteration, as
``optimize_parameters``: one forward G([x, y]) (y only with nce_idt); the D step; then one step of G
and F together. No image pool. Adam(2e-4, 0.5, 0.999) for G, F and D; ``linear`` LR: CUT 200 + 200
epochs, FastCUT 150 + 50; batch 1; load 286, crop 256, flip. ``cut_mode`` chooses the official
defaults of ``nce_idt``, ``lambda_NCE``, ``flip_equivariance``, ``n_epochs`` and ``n_epochs_decay``
(each can still be set): FastCUT is ``CUT`` with ``cut_mode: FastCUT``.

Departures from the official code:
  - The L2 normalisation of the sampled features takes its norm with ``torch.linalg.vector_norm``
    (same value to float rounding), whose gradient is finite where a feature vector is exactly 0; the
    official ``pow(2).sum().pow(0.5)`` gives NaN there (a location where a ReLU layer is 0 in every
    channel stays 0 through F's zero-bias MLP), which turned every weight of a narrow (ngf 4) CUT on
    the built-in digits into NaN within 4 steps.
  - F's MLPs are built in ``setup()`` from the generator's channel counts (and, when a checkpoint is
    loaded outside ``fit``, in ``on_load_checkpoint``), before the optimizers and before any DDP
    wrapping; the official code creates them inside the first forward pass
    (``data_dependent_initialize``), which breaks multi-GPU training (CUT issue 2). The official
    first-batch pass (a forward and backward whose gradients are then zeroed) is not run: it
    changes nothing but the random state.
  - G and F share one Adam optimizer (the official code has two with the same settings; Adam is
    per-parameter, so the updates are identical).
  - Sampled locations and the flip come from torch's random generator (official: numpy's); both are
    seeded and checkpointed here, so a resumed run continues exactly.
  - D returns logits and the losses are the suite's GANLoss (LSGAN by default: the same values).
  - ``n_down`` / ``n_blocks`` / ``netG: resnet`` make the same generator small enough for 32x32 CPU
    runs (the official code has 2 downsamplings and 4, 6 or 9 blocks).
Not ported: the StyleGAN2 generator / discriminators, and with them SinCUT (its single-image model:
StyleGAN2 nets, R1, an L1 identity term and the ``zoom_and_patch`` single-image dataset); the
``reshape`` / ``global_pool`` / ``strided_conv`` variants of F; ``wgangp`` (accepted by the suite's GANLoss
but without the official gradient-penalty call).
Departures from the paper: none known (the paper's lambda_X = 1, lambda_Y = 1 for CUT and
lambda_X = 10, no identity term for FastCUT are the code's defaults).
"""

from __future__ import annotations

import torch

from lit_i2i.core.losses import GANLoss
from lit_i2i.core.module import TranslationModule
from lit_i2i.core.nce import patch_nce_loss
from lit_i2i.errors import UserError
from lit_i2i.nets.antialias import AntialiasNLayerDiscriminator, AntialiasResnetGenerator
from lit_i2i.nets.init import init_weights
from lit_i2i.nets.patch_sample import PatchSampleF

CUT_MODES = {  # the official CUT_mode defaults (cut_model.py modify_commandline_options)
    "cut": dict(nce_idt=True, lambda_NCE=1.0, flip_equivariance=False, n_epochs=200, n_epochs_decay=200),
    "fastcut": dict(nce_idt=False, lambda_NCE=10.0, flip_equivariance=True, n_epochs=150, n_epochs_decay=50),
}
_G_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6, "resnet_4blocks": 4}


class CUT(TranslationModule):
    method_name = "cut"

    def __init__(self, cut_mode: str = "CUT", direction: str = "AtoB", netG: str = "resnet_9blocks",
                 n_blocks: int | None = None, n_down: int = 2, netD: str = "basic", n_layers_D: int = 3,
                 ngf: int = 64, ndf: int = 64, normG: str = "instance", normD: str = "instance",
                 no_antialias: bool = False, no_antialias_up: bool = False, use_dropout: bool = False,
                 init_type: str = "xavier", init_gain: float = 0.02, in_ch: int = 3, out_ch: int = 3,
                 gan_mode: str = "lsgan", lambda_GAN: float = 1.0, lambda_NCE: float | None = None,
                 nce_idt: bool | None = None, nce_layers: tuple[int, ...] = (0, 4, 8, 12, 16),
                 nce_includes_all_negatives_from_minibatch: bool = False, netF: str = "mlp_sample",
                 netF_nc: int = 256, nce_T: float = 0.07, num_patches: int = 256,
                 flip_equivariance: bool | None = None, lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999,
                 lr_policy: str = "linear", n_epochs: int | None = None, n_epochs_decay: int | None = None,
                 lr_interval: str = "epoch", ema_decay: float | None = None):
        mode = cut_mode.lower()
        if mode not in CUT_MODES:
            raise ValueError(f"cut_mode must be CUT or FastCUT, got {cut_mode!r}")
        given = dict(nce_idt=nce_idt, lambda_NCE=lambda_NCE, flip_equivariance=flip_equivariance,
                     n_epochs=n_epochs, n_epochs_decay=n_epochs_decay)
        resolved = {k: CUT_MODES[mode][k] if v is None else v for k, v in given.items()}
        super().__init__(lr_policy=lr_policy, n_epochs=resolved["n_epochs"], n_epochs_decay=resolved["n_epochs_decay"],
                         lr_interval=lr_interval, ema_decay=ema_decay)
        self.save_hyperparameters()
        self.hparams.update(resolved)  # what this run uses, whether given or taken from cut_mode
        self.hparams["nce_layers"] = [int(i) for i in nce_layers]
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be AtoB or BtoA, got {direction!r}")
        if netF not in ("mlp_sample", "sample"):
            raise ValueError(f"netF must be mlp_sample or sample, got {netF!r}")
        if list(self.hparams.nce_layers) != sorted(set(self.hparams.nce_layers)) or not self.hparams.nce_layers:
            raise ValueError(f"nce_layers must be distinct ascending module indices, got {list(nce_layers)}")
        self.method_name = "fastcut" if mode == "fastcut" else "cut"  # run tags
        self.directions = (direction,)
        self.generators = {direction: "netG"}
        if netG in _G_BLOCKS:
            if n_blocks is not None and n_blocks != _G_BLOCKS[netG]:
                raise ValueError(f"generator {netG!r} has {_G_BLOCKS[netG]} blocks but n_blocks={n_blocks} was given")
            blocks = _G_BLOCKS[netG]
        elif netG == "resnet":
            blocks = 9 if n_blocks is None else n_blocks
        else:
            raise ValueError(f"netG must be one of {', '.join([*_G_BLOCKS, 'resnet'])}, got {netG!r}")
        if netD not in ("basic", "n_layers"):
            raise ValueError(f"netD must be basic or n_layers, got {netD!r}")
        src_ch, tgt_ch = (in_ch, out_ch) if direction == "AtoB" else (out_ch, in_ch)
        self.netG = init_weights(AntialiasResnetGenerator(
            src_ch, tgt_ch, ngf, normG, use_dropout, blocks, n_down, antialias=not no_antialias,
            antialias_up=not no_antialias_up), init_type, init_gain)
        self.netD = init_weights(AntialiasNLayerDiscriminator(
            tgt_ch, ndf, 3 if netD == "basic" else n_layers_D, normD, antialias=not no_antialias), init_type, init_gain)
        self.netG.layer_channels(self.hparams.nce_layers)  # fail now, not in setup(), on a bad index
        if resolved["nce_idt"] and src_ch != tgt_ch:
            raise ValueError("the identity NCE term (nce_idt) feeds target images to G: it needs in_ch == out_ch")
        self.gan = GANLoss(gan_mode)
        self.setup_ema()

    # ------------------------------------------------------------------ F, built before the optimizers
    def build_netF(self) -> None:
        """Create F's MLPs from G's channel counts at the NCE layers (idempotent)."""
        if hasattr(self, "netF"):
            return
        h = self.hparams
        self.netF = PatchSampleF(self.netG.layer_channels(h.nce_layers), h.netF_nc, h.netF == "mlp_sample",
                                 h.init_type, h.init_gain).to(self.device)

    def setup(self, stage: str) -> None:
        self.build_netF()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if any(k.startswith("netF.") for k in checkpoint.get("state_dict", {})):
            self.build_netF()
        super().on_load_checkpoint(checkpoint)

    def build_optimizers(self):
        h = self.hparams
        self.build_netF()
        betas = (h.beta1, h.beta2)
        return {"D": torch.optim.Adam(self.netD.parameters(), lr=h.lr, betas=betas),
                "G": torch.optim.Adam([*self.netG.parameters(), *self.netF.parameters()], lr=h.lr, betas=betas)}

    # ------------------------------------------------------------------ losses
    def _domains(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(source x, target y) of this direction."""
        return (batch["A"], batch["B"]) if self.directions[0] == "AtoB" else (batch["B"], batch["A"])

    def nce_loss(self, src: torch.Tensor, out: torch.Tensor, flipped: bool = False) -> torch.Tensor:
        """lambda_NCE-weighted PatchNCE of G's output ``out`` against its input ``src``, mean over layers."""
        h = self.hparams
        feat_q = self.netG.features(out, h.nce_layers)
        if flipped:
            feat_q = [f.flip(3) for f in feat_q]
        feat_k = self.netG.features(src, h.nce_layers)
        k_pool, ids = self.netF(feat_k, h.num_patches)
        q_pool, _ = self.netF(feat_q, h.num_patches, ids)
        total = sum(patch_nce_loss(q, k, src.shape[0], h.nce_T, h.nce_includes_all_negatives_from_minibatch).mean()
                    * h.lambda_NCE for q, k in zip(q_pool, k_pool))
        return total / len(h.nce_layers)

    def generator_forward(self, src: torch.Tensor, tgt: torch.Tensor) -> dict:
        """The official ``forward``: G on [x, y] (y with nce_idt), flipped with probability ½ (FastCUT)."""
        h = self.hparams
        real = torch.cat([src, tgt]) if h.nce_idt else src
        flipped = bool(h.flip_equivariance) and float(torch.rand(())) < 0.5
        if flipped:
            real = real.flip(3)
        fake = self.netG(real)
        return {"fake": fake[:src.shape[0]], "idt": fake[src.shape[0]:] if h.nce_idt else None, "flipped": flipped}

    def generator_losses(self, src, tgt, v) -> dict[str, torch.Tensor]:
        h = self.hparams
        terms = {}
        if h.lambda_GAN > 0:
            terms["G_GAN"] = self.gan(self.netD(v["fake"]), True, for_discriminator=False) * h.lambda_GAN
        if h.lambda_NCE > 0:
            terms["NCE"] = self.nce_loss(src, v["fake"], v["flipped"])
            if h.nce_idt:
                terms["NCE_Y"] = self.nce_loss(tgt, v["idt"], v["flipped"])
        return terms

    @staticmethod
    def total_generator_loss(terms: dict[str, torch.Tensor]) -> torch.Tensor:
        nce = (terms["NCE"] + terms["NCE_Y"]) * 0.5 if "NCE_Y" in terms else terms.get("NCE", 0.0)
        return terms.get("G_GAN", 0.0) + nce

    def training_step(self, batch, batch_idx):
        src, tgt = self._domains(batch)
        v = self.generator_forward(src, tgt)
        # D on the current fakes (no pool), then G and F together with D frozen
        loss_D_fake = self.gan(self.netD(v["fake"].detach()), False)
        loss_D_real = self.gan(self.netD(tgt), True)
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        self.step("D", loss_D)
        terms = self.generator_losses(src, tgt, v)
        loss_G = self.total_generator_loss(terms)
        if torch.is_tensor(loss_G) and loss_G.requires_grad:
            self.step("G", loss_G)
        self.log_losses({"G": loss_G if torch.is_tensor(loss_G) else torch.tensor(float(loss_G)), "D": loss_D,
                         "D_real": loss_D_real, "D_fake": loss_D_fake, **terms})

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str | None = None, reference: torch.Tensor | None = None) -> torch.Tensor:
        direction = direction or self.directions[0]
        if direction not in self.directions:
            raise UserError(f"{type(self).__name__} was trained {self.directions[0]} (one-sided), not {direction}")
        return self.generator(direction)(x)

    @torch.no_grad()
    def visuals(self, batch):
        s, t = ("A", "B") if self.directions[0] == "AtoB" else ("B", "A")
        src, tgt = batch[s], batch[t]
        v = {f"real_{s}": src, f"fake_{t}": self.translate(src), f"real_{t}": tgt}
        if self.hparams.nce_idt:
            v[f"idt_{t}"] = self.translate(tgt)
        return v


__all__ = ["CUT", "CUT_MODES"]
