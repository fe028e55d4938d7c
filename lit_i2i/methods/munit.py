"""MUNIT: Huang, Liu, Belongie, Kautz, "Multimodal Unsupervised Image-to-Image Translation", ECCV 2018.
Follows the official code, NVlabs/MUNIT@a82e222 (``trainer.py`` ``MUNIT_Trainer``, ``networks.py``,
``configs/edges2shoes_folder.yaml`` and ``summer2winter_yosemite256_folder.yaml``).

Per domain X an auto-encoder ``gen_X`` (``lit_i2i.nets.munit.MUNITGenerator``, the official
``AdaINGen``): a content code c = E^c_X(x) (a 64x64x256 map at 256 px), a style code s = E^s_X(x)
(8-d), a decoder G_X(c, s) with AdaIN parameters from an MLP on s. Translation A->B of x_a with a
style s_b: G_B(E^c_A(x_a), s_b), where s_b ~ N(0, I) (random style) or E^s_B(reference) (reference-
guided). A 3-scale LSGAN discriminator per domain (``munit_discriminator``, the official ``MsImageDis``).

| term | formula | weight (config key, default) |
|---|---|---|
| gan_A, gan_B | LSGAN_G(D_A(x_ba)), LSGAN_G(D_B(x_ab)), summed over scales; x_ba = G_A(c_b, s_a), s_a ~ N(0, I) | gan_w = 1 |
| recon_x_A, recon_x_B | ‖G_A(c_a, s'_a) − x_a‖₁ with (c_a, s'_a) = E_A(x_a); same for B | recon_x_w = 10 |
| recon_s_A, recon_s_B | ‖E^s_A(x_ba) − s_a‖₁, ‖E^s_B(x_ab) − s_b‖₁ | recon_s_w = 1 |
| recon_c_A, recon_c_B | ‖E^c_B(x_ab) − c_a‖₁, ‖E^c_A(x_ba) − c_b‖₁ (c_a not detached) | recon_c_w = 1 |
| cyc_A, cyc_B | ‖G_A(E^c_B(x_ab), s'_a) − x_a‖₁, same for B (only computed when its weight > 0) | recon_x_cyc_w = 0 (summer2winter: 10) |
| vgg_A, vgg_B | mean((IN(V(x_ba)) − IN(V(x_b)))²), same for x_ab vs x_a; V = VGG16 relu5_3, IN = instance norm | vgg_w = 0 |
| loss_D | gan_w · Σ_X [LSGAN_D(D_X(x_X), real) + LSGAN_D(D_X(fake_X), fake)], fakes with fresh random styles | 1 |

All L1 terms are means over every element. Per iteration, as ``train.py``: ``dis_update`` (fresh
random styles, fakes without gradient) then ``gen_update`` (fresh random styles again, D frozen).
Adam(lr 1e-4, betas (0.5, 0.999), weight decay 1e-4) for both; StepLR halving every 100,000
iterations (``lr_interval`` step: the schedulers step once per iteration); 1,000,000 iterations,
batch 1. Init: Kaiming (fan-in) weights, zero biases for both generators; N(0, 0.02) weights, zero
biases for the discriminators (``init: kaiming`` then ``dis.apply(weights_init('gaussian'))``);
LayerNorm gamma ~ U(0, 1), beta 0. ``gan_mode: nsgan`` (the official alternative) is the
sigmoid-BCE loss (``GANLoss("vanilla")``).

``translate(x, direction, reference=None, mode=None, seed=0)``: with a ``reference`` (one image, or
one per input) its style from the target domain's style encoder; else ``mode="random"`` (also
``"random:SEED"`` from the CLI): s ~ N(0, I) drawn on the CPU from a generator seeded with ``seed``
(row i for input i; the same seed gives the same styles on any device), ``seed=None`` draws from the
global RNG. The metrics callback therefore measures the random-style translation with seed 0.
Grids (``visuals``): per domain the real image, its reconstruction, ``grid_styles`` random-style
translations with fixed seeds 0, 1, ... (the official fixed display styles), and the reference-guided
translation whose reference is the other domain's image in the same row.

Departures from the official code:
  - The learning rate halves after iterations 100,000, 200,000, ... (the suite's schedulers step at
    a batch's end); ``train.py`` calls ``update_learning_rate()`` before each iteration, so it halves
    one iteration earlier (after 99,999). Negligible; kept for the one schedule convention.
  - The discriminator's fakes are computed under ``no_grad`` (the official code builds the graph and
    detaches: the same values and gradients), and the unused style codes of that step are not computed.
  - VGG loss (``vgg_w > 0``): the official network is the Caffe VGG16 converted by fast-neural-style
    (BGR, 0-255 minus the mean pixel), which no maintained source serves; here torchvision's ImageNet
    VGG16 (RGB, ImageNet mean/std), resolved offline-first like every suite weight file
    (``vgg_weights``, ``LIT_I2I_VGG_WEIGHTS`` or the torch hub cache; a clear error otherwise, raised
    at fit start), with pool4 removed as the official ``Vgg16.forward`` skips it (relu5_3 at 1/8 of
    the input). The VGG net is not a submodule: it is not saved in checkpoints (the official saves
    only gens, dises and optimizers either way).
  - Data pairing: the official ``zip`` of two shuffled loaders (an epoch ends with the smaller
    domain) vs the suite's unpaired datamodules (each A with a random B; an epoch is the larger
    domain). Iteration-based schedules make this matter only at epoch boundaries.
  - The style code is (N, 8) instead of (N, 8, 1, 1): same values.
Departures from the paper: none intended; the paper's "explicit cycle" and "domain-invariant
perceptual" terms are the config-dependent weights above, as in the code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_i2i.core.losses import GANLoss, recon_loss
from lit_i2i.core.module import TranslationModule
from lit_i2i.errors import UserError
from lit_i2i.nets.init import init_weights
from lit_i2i.nets.munit import MUNITGenerator, munit_discriminator
from lit_i2i.nets.vae import unique_parameters

#: MUNIT ``init`` name -> (suite init_type, gain); xavier/orthogonal use gain sqrt(2) as utils.weights_init
INITS = {"kaiming": ("kaiming", 0.0), "gaussian": ("normal", 0.02), "xavier": ("xavier", 2 ** 0.5),
         "orthogonal": ("orthogonal", 2 ** 0.5)}
WEIGHTS = ("gan_w", "recon_x_w", "recon_s_w", "recon_c_w", "recon_x_cyc_w", "vgg_w")


def munit_vgg(weights: str | None = None) -> nn.Module:
    """VGG16 up to relu5_3 without pool4 (the official ``Vgg16``), torchvision ImageNet weights (or
    ``"random"``: the seeded random VGG of the tests), frozen."""
    from lit_i2i.metrics.extractors import VGGExtractor

    vgg = VGGExtractor("vgg16", weights, layers=("relu5_3",))
    keep = [i for i, n in enumerate(vgg.names) if n != "pool4"]
    vgg.features, vgg.names = nn.Sequential(*[vgg.features[i] for i in keep]), [vgg.names[i] for i in keep]
    return vgg


class MUNIT(TranslationModule):
    method_name = "munit"
    directions = ("AtoB", "BtoA")

    def __init__(self, a_ch: int = 3, b_ch: int = 3, dim: int = 64, style_dim: int = 8, n_down: int = 2,
                 n_res: int = 4, mlp_dim: int = 256, ndf: int = 64, n_layers_D: int = 4, num_scales: int = 3,
                 gan_mode: str = "lsgan", gan_w: float = 1.0, recon_x_w: float = 10.0, recon_s_w: float = 1.0,
                 recon_c_w: float = 1.0, recon_x_cyc_w: float = 0.0, vgg_w: float = 0.0, vgg_weights: str | None = None,
                 lr: float = 1e-4, beta1: float = 0.5, beta2: float = 0.999, weight_decay: float = 1e-4,
                 init_type: str = "kaiming", lr_policy: str = "step", lr_step_size: int = 100_000,
                 lr_gamma: float = 0.5, grid_styles: int = 3):
        if lr_policy not in ("step", "constant"):
            raise ValueError(f"MUNIT's lr_policy is 'step' or 'constant', got {lr_policy!r}")
        super().__init__(lr_policy=lr_policy, lr_interval="step", lr_step_size=lr_step_size, lr_gamma=lr_gamma)
        self.save_hyperparameters()
        if gan_mode not in ("lsgan", "nsgan"):
            raise ValueError(f"MUNIT's gan_mode is 'lsgan' or 'nsgan', got {gan_mode!r}")
        if init_type not in INITS:
            raise ValueError(f"init_type must be one of {', '.join(INITS)}, got {init_type!r}")
        self.gen_a = MUNITGenerator(a_ch, dim, style_dim, n_down, n_res, mlp_dim)
        self.gen_b = MUNITGenerator(b_ch, dim, style_dim, n_down, n_res, mlp_dim)
        self.dis_a = munit_discriminator(a_ch, ndf, n_layers_D, num_scales)
        self.dis_b = munit_discriminator(b_ch, ndf, n_layers_D, num_scales)
        kind, gain = INITS[init_type]
        for g in (self.gen_a, self.gen_b):
            init_weights(g, kind, gain)
        for d in (self.dis_a, self.dis_b):
            init_weights(d, "normal", 0.02)
        self.gan = GANLoss("lsgan" if gan_mode == "lsgan" else "vanilla")
        self.w = {k: float(getattr(self.hparams, k)) for k in WEIGHTS}
        self.style_dim = style_dim
        self._frozen: dict[str, nn.Module] = {}  # the VGG: a plain dict, so never a submodule nor in the state dict

    def build_optimizers(self):
        h = self.hparams
        kw = {"lr": h.lr, "betas": (h.beta1, h.beta2), "weight_decay": h.weight_decay}
        return {"D": torch.optim.Adam(unique_parameters(self.dis_a, self.dis_b), **kw),
                "G": torch.optim.Adam(unique_parameters(self.gen_a, self.gen_b), **kw)}

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.w["vgg_w"] > 0:
            self.vgg()  # refuse at fit start, not at the first batch

    def vgg(self) -> nn.Module:
        if "vgg" not in self._frozen:
            try:
                self._frozen["vgg"] = munit_vgg(self.hparams.vgg_weights)
            except UserError as e:
                raise UserError(f"MUNIT's vgg_w > 0 needs VGG16 weights: {e} (or set --model.init_args.vgg_w 0, "
                                "the default of the edges2shoes and summer2winter configs)") from None
        return self._frozen["vgg"]

    # ------------------------------------------------------------------ forward
    def random_style(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(n, self.style_dim, device=like.device, dtype=like.dtype)

    def forward_all(self, a: torch.Tensor, b: torch.Tensor, s_a: torch.Tensor, s_b: torch.Tensor) -> dict:
        """Every tensor of the official ``gen_update``, given the random styles s_a, s_b."""
        v = {"real_A": a, "real_B": b, "s_a": s_a, "s_b": s_b}
        v["c_a"], v["s_a_prime"] = self.gen_a.codes(a)
        v["c_b"], v["s_b_prime"] = self.gen_b.codes(b)
        v["rec_A"], v["rec_B"] = self.gen_a.decode(v["c_a"], v["s_a_prime"]), self.gen_b.decode(v["c_b"], v["s_b_prime"])
        v["fake_A"], v["fake_B"] = self.gen_a.decode(v["c_b"], s_a), self.gen_b.decode(v["c_a"], s_b)  # x_ba, x_ab
        v["c_b_recon"], v["s_a_recon"] = self.gen_a.codes(v["fake_A"])
        v["c_a_recon"], v["s_b_recon"] = self.gen_b.codes(v["fake_B"])
        if self.w["recon_x_cyc_w"] > 0:
            v["cyc_A"] = self.gen_a.decode(v["c_a_recon"], v["s_a_prime"])
            v["cyc_B"] = self.gen_b.decode(v["c_b_recon"], v["s_b_prime"])
        return v

    def vgg_loss(self, img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        vgg = self.vgg().to(img.device)
        f_img, f_target = vgg(img)["relu5_3"], vgg(target)["relu5_3"]
        return F.mse_loss(F.instance_norm(f_img.float()), F.instance_norm(f_target.float()))

    def generator_losses(self, v: dict) -> dict[str, torch.Tensor]:
        w, a, b = self.w, v["real_A"], v["real_B"]
        g = {"gan_A": w["gan_w"] * self.gan(self.dis_a(v["fake_A"]), True, for_discriminator=False),
             "gan_B": w["gan_w"] * self.gan(self.dis_b(v["fake_B"]), True, for_discriminator=False),
             "recon_x_A": w["recon_x_w"] * recon_loss(v["rec_A"], a),
             "recon_x_B": w["recon_x_w"] * recon_loss(v["rec_B"], b),
             "recon_s_A": w["recon_s_w"] * recon_loss(v["s_a_recon"], v["s_a"]),
             "recon_s_B": w["recon_s_w"] * recon_loss(v["s_b_recon"], v["s_b"]),
             "recon_c_A": w["recon_c_w"] * recon_loss(v["c_a_recon"], v["c_a"]),
             "recon_c_B": w["recon_c_w"] * recon_loss(v["c_b_recon"], v["c_b"])}
        if w["recon_x_cyc_w"] > 0:
            g["cyc_A"] = w["recon_x_cyc_w"] * recon_loss(v["cyc_A"], a)
            g["cyc_B"] = w["recon_x_cyc_w"] * recon_loss(v["cyc_B"], b)
        if w["vgg_w"] > 0:
            g["vgg_A"] = w["vgg_w"] * self.vgg_loss(v["fake_A"], b)
            g["vgg_B"] = w["vgg_w"] * self.vgg_loss(v["fake_B"], a)
        return g

    def discriminator_loss(self, a, b, fake_A, fake_B) -> dict[str, torch.Tensor]:
        g = self.w["gan_w"]
        return {"D_A": g * (self.gan(self.dis_a(a), True) + self.gan(self.dis_a(fake_A), False)),
                "D_B": g * (self.gan(self.dis_b(b), True) + self.gan(self.dis_b(fake_B), False))}

    def training_step(self, batch, batch_idx):
        a, b = batch["A"], batch["B"]
        # dis_update: fresh random styles, fakes without gradient
        with torch.no_grad():
            s_a, s_b = self.random_style(len(b), b), self.random_style(len(a), a)
            fake_A = self.gen_a.decode(self.gen_b.encode(b), s_a)
            fake_B = self.gen_b.decode(self.gen_a.encode(a), s_b)
        d = self.discriminator_loss(a, b, fake_A, fake_B)
        loss_D = d["D_A"] + d["D_B"]
        self.step("D", loss_D)
        # gen_update: fresh random styles, D frozen
        s_a, s_b = self.random_style(len(b), b), self.random_style(len(a), a)
        g = self.generator_losses(self.forward_all(a, b, s_a, s_b))
        loss_G = sum(g.values())
        self.step("G", loss_G)
        self.log_losses({"G": loss_G, "D": loss_D, **d, **g})

    # ------------------------------------------------------------------ the one door
    def _gens(self, direction: str) -> tuple[MUNITGenerator, MUNITGenerator]:
        if direction == "AtoB":
            return self.gen_a, self.gen_b
        if direction == "BtoA":
            return self.gen_b, self.gen_a
        raise ValueError(f"MUNIT translates {self.directions}, not {direction!r}")

    def seeded_style(self, n: int, seed: int | None, like: torch.Tensor) -> torch.Tensor:
        """n style codes ~ N(0, I): from a CPU generator seeded with ``seed`` (device-independent), or
        from the global RNG when ``seed`` is None."""
        if seed is None:
            return self.random_style(n, like)
        gen = torch.Generator().manual_seed(int(seed))
        return torch.randn(n, self.style_dim, generator=gen).to(device=like.device, dtype=like.dtype)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None,
                  mode: str | None = None, seed: int | None = 0) -> torch.Tensor:
        src, tgt = self._gens(direction)
        name, _, arg = (mode or ("reference" if reference is not None else "random")).partition(":")
        if name == "reference":
            if reference is None:
                raise UserError("MUNIT's reference mode needs a reference image (--reference / reference=...)")
            if len(reference) not in (1, len(x)):
                raise UserError(f"{len(reference)} references for {len(x)} images: give one, or one per image")
            s = tgt.style(reference.to(x.device)).expand(len(x), -1)
        elif name == "random":
            if arg:
                if not arg.lstrip("-").isdigit():
                    raise UserError(f"--mode random:SEED takes an integer seed, not {arg!r}")
                seed = int(arg)
            s = self.seeded_style(len(x), seed, x)
        else:
            raise UserError(f"--mode: MUNIT translates with 'random' (or 'random:SEED') or 'reference', not {mode!r}")
        return tgt.decode(src.encode(x), s)

    @torch.no_grad()
    def visuals(self, batch):
        a, b = batch["A"], batch["B"]
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        out = {}
        for x, y, (d, rev) in ((a, b, ("A", "AtoB")), (b, a, ("B", "BtoA"))):
            gen = self.gen_a if d == "A" else self.gen_b
            out[f"real_{d}"], out[f"rec_{d}"] = x, gen(x)
            for k in range(self.hparams.grid_styles):
                out[f"{rev} s{k}"] = self.translate(x, rev, seed=k)
            out[f"{rev} ref"] = self.translate(x, rev, reference=y)  # the style of the other domain's row image
        return out
