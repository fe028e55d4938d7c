"""UNIT: Liu, Breuel, Kautz, "Unsupervised Image-to-Image Translation Networks", NeurIPS 2017.
Follows the NIPS-era official code, mingyuliutw/UNIT branch ``version_02`` (``COCOGANTrainer``,
``COCOResGen2``, ``COCODis`` / ``COCOMsDis`` / ``COCOSharedDis``, configs ``exps/unit/*.yaml``).

Two VAE-GANs with a shared latent space. Per domain: an encoder front-end (7x7 conv, 2 stride-2
convs, 3 residual blocks) and a decoder back-end (3 residual blocks, 2 transposed convs, 1x1 conv,
tanh); SHARED by both domains: the last encoder block and the first decoder block (one module
object, ``enc_A.shared is enc_B.shared``; see ``lit_i2i.nets.vae``). mu = E(x); at train time
z = mu + N(0, I) (a unit-variance "reduced" VAE); translation A->B is ``dec_B(mu_A(x))`` (no noise,
the official translate scripts run in eval mode).

| term | formula | weight (nips / master) |
|---|---|---|
| gan_A, gan_B | GAN(D_A(G_A(z_B)), real), GAN(D_B(G_B(z_A)), real) | gan_w = 10 / 1 |
| kl_A, kl_B | mean(mu_A^2), mean(mu_B^2) | kl_w = 0.1 / 0.01 |
| recon_A, recon_B | ‖G_A(z_A) − x_A‖₁, ‖G_B(z_B) − x_B‖₁ | recon_w = 100 / 10 |
| kl_cyc_A, kl_cyc_B | mean(E_B(G_B(z_A))^2), mean(E_A(G_A(z_B))^2) | kl_cyc_w = 0.1 / 0.01 |
| cyc_A, cyc_B | ‖G_A(E_B(G_B(z_A)) + n) − x_A‖₁, ‖G_B(E_A(G_A(z_B)) + n) − x_B‖₁ | cyc_w = 100 / 10 |
| loss_D | gan_w · Σ_X [GAN(D_X(x_X), real) + GAN(D_X(x_{Y→X}), fake)] | 1 |

GAN = vanilla (BCE with logits; the code applies a sigmoid then BCE) for ``nips``, LSGAN for
``master``; multi-scale outputs are summed over scales. Per iteration: D step (fakes from a no-grad
forward of the generators, noise included, as ``dis_update``), then G step (a fresh forward, D
frozen). Adam(1e-4, 0.5, 0.999), weight decay 1e-4, for both; Gaussian init std 0.02; no LR schedule.

Generators (``arch``): ``unit`` = ``COCOResGen2`` (LeakyReLU, no norm outside the blocks; the
CelebA configs and synthia2cityscape, the latter with ``res_dropout_ratio`` 0.5), ``unit_in`` =
``COCOResGen`` (ReLU + InstanceNorm in the stride-2 and transposed convs; cat2tiger and corgi2husky).
Initialisation as ``gaussian_weights_init``: conv and transposed-conv weights N(0, 0.02), biases left
at PyTorch's default (``variant: master`` zeroes them, as its ``weights_init``).
Data, as every ``version_02`` dataset class: random horizontal mirroring at training (``flip: true``
in the configs; not for the digit configs, where a mirrored digit is another shape); SYNTHIA images
get a 3x3 Gaussian blur before scaling (``dataset_blur_image``: ``data.blur: [A]`` in the street config).

Discriminators (``netD``): ``single`` (``COCODis``, ``n_layers_D`` 3x3 stride-2 convs: small
images, cat2tiger), ``multiscale`` (``COCOMsDis``, ``num_scales`` nets, Gaussian-blur downsampling:
street scenes), ``shared`` (``COCOSharedDis``: 2 per-domain front layers, ``n_layers_D`` shared layers:
CelebA), ``master`` (master's ``MsImageDis``: 4x4 convs, LeakyReLU 0.2, average-pool downsampling).

``variant: master`` (mingyuliutw/UNIT master, the MUNIT-era re-release), cheap options over the same
trainer: no weight sharing (each domain gets its own copy of the "shared" layers; the shared latent
is enforced by the losses only), LSGAN, every weight / 10, ``netD: master``, Kaiming init for the
generators, StepLR halving every 100k iterations. Any weight, ``gan_mode``, ``share_weights`` or
``netD`` given explicitly overrides the variant's default.

Departures from the official code:
  - KL is mean(mu^2) of the noise-free mean, as the paper and the issue state; ``version_02``
    evaluates it on the latent *after* its Gaussian-noise layer (mean((mu + n)^2): the same
    expected gradient plus a constant 1).
  - Master's generator layout (4x4 down-convs, LayerNorm upsampling decoder, reflect padding, 4
    blocks) is not reproduced: ``variant: master`` keeps the ``version_02`` layout.
  - Residual-block dropout (``dropout``, 0.5 for synthia2cityscape) sits between the two convs, not
    after the second norm (see ``nets.vae``).
  - The KL over both domains is kl(mu_A) + kl(mu_B); the code's ``2 * mean`` over the concatenated
    batch is the same for equal batch sizes.
  - No EMA option (``translate`` chains two modules; the base class's EMA wraps single generators).
Departures from the paper: none intended beyond the above; the paper's batch size is 1 (set by the
datamodule). The domain-adaptation variant (CoVAE32x32 with a classifier head) is not implemented.
"""

from __future__ import annotations

import torch

from lit_i2i.core.losses import GANLoss, recon_loss
from lit_i2i.core.module import TranslationModule
from lit_i2i.nets.init import init_weights
from lit_i2i.nets.vae import (MultiScaleDiscriminator, UnitDiscriminator, VAESpec, master_dis_net,
                              shared_front_discriminators, shared_latent_vaes, unique_parameters)

VARIANTS = {
    "nips": dict(gan_w=10.0, kl_w=0.1, recon_w=100.0, kl_cyc_w=0.1, cyc_w=100.0, gan_mode="vanilla",
                 share_weights=True, netD="single", init_type="normal", lr_policy="constant"),
    "master": dict(gan_w=1.0, kl_w=0.01, recon_w=10.0, kl_cyc_w=0.01, cyc_w=10.0, gan_mode="lsgan",
                   share_weights=False, netD="master", init_type="kaiming", lr_policy="step"),
}
NET_D = ("single", "multiscale", "shared", "master")


def kl_loss(mu: torch.Tensor) -> torch.Tensor:
    """UNIT/OST's KL of a unit-variance Gaussian up to a constant: mean(mu^2), in float32."""
    return mu.float().pow(2).mean()


class SharedLatentTranslation:
    """The one door of the shared-latent VAE-GANs (UNIT, OST): encode to the mean code (no noise) and
    decode in the other domain. A->B: dec_B(mu_A(x)); B->A: dec_A(mu_B(x))."""

    directions = ("AtoB", "BtoA")

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None) -> torch.Tensor:
        if direction == "AtoB":
            return self.dec_B(self.enc_A(x))
        if direction == "BtoA":
            return self.dec_A(self.enc_B(x))
        raise ValueError(f"{type(self).__name__} translates {self.directions}, not {direction!r}")


class UNIT(SharedLatentTranslation, TranslationModule):
    method_name = "unit"
    directions = ("AtoB", "BtoA")

    def __init__(self, variant: str = "nips", a_ch: int = 3, b_ch: int = 3, arch: str = "unit", ngf: int = 64, n_down: int = 2,
                 n_res_unshared: int = 3, n_res_shared: int = 1, norm: str = "instance", dropout: float = 0.0,
                 share_weights: bool | None = None, netD: str | None = None, ndf: int = 64, n_layers_D: int = 4,
                 num_scales: int = 3, n_front_D: int = 2, gan_mode: str | None = None,
                 gan_w: float | None = None, kl_w: float | None = None, recon_w: float | None = None,
                 kl_cyc_w: float | None = None, cyc_w: float | None = None,
                 lr: float = 1e-4, beta1: float = 0.5, beta2: float = 0.999, weight_decay: float = 1e-4,
                 init_type: str | None = None, init_gain: float = 0.02, lr_policy: str | None = None,
                 lr_interval: str = "step", lr_step_size: int = 100_000, lr_gamma: float = 0.5,
                 n_epochs: int = 100, n_epochs_decay: int = 100):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        given = dict(gan_w=gan_w, kl_w=kl_w, recon_w=recon_w, kl_cyc_w=kl_cyc_w, cyc_w=cyc_w, gan_mode=gan_mode,
                     share_weights=share_weights, netD=netD, init_type=init_type, lr_policy=lr_policy)
        cfg = {k: (VARIANTS[variant][k] if v is None else v) for k, v in given.items()}
        super().__init__(lr_policy=cfg["lr_policy"], n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                         lr_interval=lr_interval, lr_step_size=lr_step_size, lr_gamma=lr_gamma)
        self.save_hyperparameters()
        self.cfg = cfg
        if cfg["netD"] not in NET_D:
            raise ValueError(f"netD must be one of {', '.join(NET_D)}, got {cfg['netD']!r}")
        if arch not in ("unit", "unit_in"):
            raise ValueError(f"arch must be 'unit' (COCOResGen2) or 'unit_in' (COCOResGen), got {arch!r}")
        spec = VAESpec(arch, ngf, n_down, None, n_res_unshared, n_res_shared, norm, dropout)
        self.enc_A, self.dec_A, self.enc_B, self.dec_B = shared_latent_vaes(spec, a_ch, b_ch, cfg["share_weights"])
        zero_bias = variant == "master"  # version_02's gaussian_weights_init sets conv weights only
        for m in (self.enc_A, self.dec_A, self.enc_B, self.dec_B):
            init_weights(m, cfg["init_type"], init_gain, zero_bias=zero_bias)
        self.dis_A, self.dis_B = self._build_D(cfg["netD"], a_ch, b_ch, ndf, n_layers_D, num_scales, n_front_D)
        for m in (self.dis_A, self.dis_B):
            init_weights(m, "normal", init_gain, zero_bias=zero_bias)
        self.gan = GANLoss(cfg["gan_mode"])
        self.w = {k: float(cfg[k]) for k in ("gan_w", "kl_w", "recon_w", "kl_cyc_w", "cyc_w")}

    @staticmethod
    def _build_D(kind, a_ch, b_ch, ndf, n_layers, num_scales, n_front):
        if kind == "single":
            return UnitDiscriminator(a_ch, ndf, n_layers), UnitDiscriminator(b_ch, ndf, n_layers)
        if kind == "multiscale":
            return tuple(MultiScaleDiscriminator([UnitDiscriminator(c, ndf, n_layers) for _ in range(num_scales)],
                                                 "gaussian") for c in (a_ch, b_ch))
        if kind == "master":
            return tuple(MultiScaleDiscriminator([master_dis_net(c, ndf, n_layers) for _ in range(num_scales)],
                                                 "avgpool") for c in (a_ch, b_ch))
        return shared_front_discriminators(a_ch, b_ch, ndf, n_front, n_layers)

    def build_optimizers(self):
        h = self.hparams
        kw = dict(lr=h.lr, betas=(h.beta1, h.beta2), weight_decay=h.weight_decay)
        return {"D": torch.optim.Adam(unique_parameters(self.dis_A, self.dis_B), **kw),
                "G": torch.optim.Adam(unique_parameters(self.enc_A, self.dec_A, self.enc_B, self.dec_B), **kw)}

    # ------------------------------------------------------------------ forward
    def sample(self, mu: torch.Tensor) -> torch.Tensor:
        """z = mu + N(0, I) in training mode, mu otherwise."""
        return mu + torch.randn_like(mu) if self.training else mu

    def forward_all(self, a: torch.Tensor, b: torch.Tensor, cycle: bool = True) -> dict[str, torch.Tensor]:
        v = {"real_A": a, "real_B": b, "mu_A": self.enc_A(a), "mu_B": self.enc_B(b)}
        z_a, z_b = self.sample(v["mu_A"]), self.sample(v["mu_B"])
        v.update(rec_A=self.dec_A(z_a), fake_B=self.dec_B(z_a), rec_B=self.dec_B(z_b), fake_A=self.dec_A(z_b))
        if cycle:
            v["mu_ABA"] = self.enc_B(v["fake_B"])  # A -> B, re-encoded by B's encoder
            v["mu_BAB"] = self.enc_A(v["fake_A"])
            v["cyc_A"] = self.dec_A(self.sample(v["mu_ABA"]))
            v["cyc_B"] = self.dec_B(self.sample(v["mu_BAB"]))
        return v

    def generator_losses(self, v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        w = self.w
        return {
            "gan_A": w["gan_w"] * self.gan(self.dis_A(v["fake_A"]), True, for_discriminator=False),
            "gan_B": w["gan_w"] * self.gan(self.dis_B(v["fake_B"]), True, for_discriminator=False),
            "kl_A": w["kl_w"] * kl_loss(v["mu_A"]),
            "kl_B": w["kl_w"] * kl_loss(v["mu_B"]),
            "recon_A": w["recon_w"] * recon_loss(v["rec_A"], v["real_A"]),
            "recon_B": w["recon_w"] * recon_loss(v["rec_B"], v["real_B"]),
            "kl_cyc_A": w["kl_cyc_w"] * kl_loss(v["mu_ABA"]),
            "kl_cyc_B": w["kl_cyc_w"] * kl_loss(v["mu_BAB"]),
            "cyc_A": w["cyc_w"] * recon_loss(v["cyc_A"], v["real_A"]),
            "cyc_B": w["cyc_w"] * recon_loss(v["cyc_B"], v["real_B"]),
        }

    def discriminator_loss(self, a, b, fake_A, fake_B) -> dict[str, torch.Tensor]:
        g = self.w["gan_w"]
        return {"D_A": g * (self.gan(self.dis_A(a), True) + self.gan(self.dis_A(fake_A), False)),
                "D_B": g * (self.gan(self.dis_B(b), True) + self.gan(self.dis_B(fake_B), False))}

    def training_step(self, batch, batch_idx):
        a, b = batch["A"], batch["B"]
        # D step: fakes from a no-grad pass of the generators (noise on, as the reference's dis_update)
        with torch.no_grad():
            f = self.forward_all(a, b, cycle=False)
        d = self.discriminator_loss(a, b, f["fake_A"].detach(), f["fake_B"].detach())
        loss_D = d["D_A"] + d["D_B"]
        self.step("D", loss_D)
        # G step: a fresh forward, D frozen
        g = self.generator_losses(self.forward_all(a, b))
        loss_G = sum(g.values())
        self.step("G", loss_G)
        self.log_losses({"G": loss_G, "D": loss_D, **d, **g})

    @torch.no_grad()
    def visuals(self, batch):
        v = self.forward_all(batch["A"], batch["B"])  # callers put the module in eval mode: no noise
        return {k: v[k] for k in ("real_A", "rec_A", "fake_B", "cyc_A", "real_B", "rec_B", "fake_A", "cyc_B")}
