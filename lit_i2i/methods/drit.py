"""DRIT++: Lee, Tseng, Mao, Huang, Lu, Singh, Yang, "DRIT++: Diverse Image-to-Image Translation via
Disentangled Representations", IJCV 2020 (ECCV 2018's DRIT with mode seeking). Follows the official
code, HsinYingLee/DRIT@f19f50a (``src/model.py``, ``networks.py``, ``train.py``, ``options.py``).

Networks (``lit_i2i.nets.drit``): content encoders E^c_A, E^c_B whose last residual block is one
shared module (plus N(0, I) noise at training), attribute encoders E^a (``concat: true``, the default
of options.py: VAE heads, nz 8; ``concat: false``: deterministic codes), generators G_A, G_B
(``G_concat``, whose first residual block is shared; or ``G`` with feature-wise transforms), image
discriminators D_A, D_B (judging cross translations) and D_A2, D_B2 (judging random-attribute
outputs), 3-scale, no norm, no spectral norm; a content discriminator D^c telling E^c_A's codes from
E^c_B's. ``a`` / ``b`` below are the first ``half_size`` (official: 1) images of a batch, ``a'`` /
``b'`` the rest; z_a = mu_a + sigma_a * eps from E^a_A(a), z, z2 ~ N(0, I).

u = G_A(c_b, z_a), v = G_B(c_a, z_b) (cross translations; c_a = E^c_A(a), c_b = E^c_B(b));
aa = G_A(c_a, z_a), bb = G_B(c_b, z_b); r_A = G_A(c_b, z), r_A2 = G_A(c_b, z2), r_B = G_B(c_a, z), r_B2 = G_B(c_a, z2);
cyc_A = G_A(E^c_B(v), z_a~) with z_a~ sampled from E^a_A(u); cyc_B = G_B(E^c_A(u), z_b~) from E^a_B(v).
GAN(x, t) = BCE-with-logits(D(x), t), mean over each logit map, summed over scales.

| term | formula | weight | step |
|---|---|---|---|
| gan_A, gan_B | GAN(D_A(u), 1), GAN(D_B(v), 1) | 1 | EG |
| gan_content_A, gan_content_B | GAN(D^c(c_a), 0.5), GAN(D^c(c_b), 0.5) | 1 | EG |
| kl_attr_A, kl_attr_B | -1/2 sum(1 + logvar - mu^2 - exp logvar) (summed, not averaged); ``concat: false``: mean(z_a^2) | 0.01 | EG |
| kl_content_A, kl_content_B | mean(c_a^2), mean(c_b^2) (noise included) | 0.01 | EG |
| cross_A, cross_B | ‖cyc_A − a‖₁, ‖cyc_B − b‖₁ (cross-cycle) | 10 | EG |
| self_A, self_B | ‖aa − a‖₁, ‖bb − b‖₁ (self reconstruction) | 10 | EG |
| gan2_A, gan2_B | GAN(D_A2(r_A), 1) + GAN(D_A2(r_A2), 1) (and B) | 1 | G alone |
| latent_A, latent_B | mean|mu(E^a_A(r_A)) − z| (and B) (latent regression) | 10 | G alone |
| ms_AB, ms_BA | 1 / (mean|r_B2 − r_B| / mean|z2 − z| + 1e-5) (mode seeking; ``no_ms`` drops it and r_·2) | 1 | G alone |
| D_A, D_B | GAN(D_A(a), 1) + GAN(D_A(u), 0) | 1 | D_A, D_B |
| D_A2, D_B2 | [GAN(D_A2(a'), 1) + GAN(D_A2(r_A), 0)] + [GAN(D_A2(a'), 1) + GAN(D_A2(r_A2), 0)] | 1 | D_A2, D_B2 |
| D_content | GAN(D^c(c_a), 0) + GAN(D^c(c_b), 1) (codes detached), gradient norm clipped at 5 | 1 | D^c |

"EG" steps E^c, E^a and G; "G alone" steps E^c and G only (E^a's gradient of those terms is zeroed
unused, as in the official code: the latent regression does not train the attribute encoder).

Cadence (``train.py``): batch i of an epoch is a content-only iteration (one D^c step on a fresh
encoding of a, b) unless (i + 1) % ``d_iter`` == 0 (3) or i is one of the epoch's last two batches;
then a full iteration: one forward, the D_A, D_A2, D_B, D_B2, D^c steps, then E^c, E^a, G stepped
on the EG terms, then E^c and G stepped again on the "G alone" terms: 10 optimizer steps. Eight Adam
optimizers (betas 0.5, 0.999, weight decay 1e-4): lr 1e-4, D^c 1e-4 / 2.5. LR (``lr_policy: lambda``):
1 − max(0, epoch − n_ep_decay) / (n_ep − n_ep_decay + 1), stepped at each epoch end (1200 epochs,
decay after 600); ``step``: x0.1 every n_ep_decay epochs; n_ep_decay −1: constant. Init N(0, 0.02)
for conv weights only.

Translation (``translate``): A->B is G_B(E^c_A(x), z) without noise, z ~ N(0, I) (``mode: random``,
drawn from a generator seeded with ``seed``: deterministic, the global RNG untouched; ``seed: None``
uses the global RNG) or z sampled from E^a_B(reference) (``reference=`` / ``mode: reference``, as
``test_forward_transfer``; ``mode: reference_mean`` takes mu). :meth:`sample` gives several random
outputs of one input (diversity grids, LPIPS diversity).

Departures from the official code:
  - The "G alone" step: the official ``update_EG`` steps E^c, E^a, G and then back-propagates the
    second loss through the graph retained from before that step. Under PyTorch 0.4 the saved
    weight tensors alias the parameters, so that backward silently mixed stepped weights with old
    activations; PyTorch >= 1.5 refuses it ("modified by an inplace operation", DRIT issue 62). Here
    both gradients are taken at the forward's weights (before any step) and the two steps then
    applied in the official order, each Adam optimizer of E^c and G stepping twice.
  - BCE-with-logits instead of ``sigmoid`` then ``binary_cross_entropy``: equal except where the
    official version saturates (|logit| > ~17 in float32, where its clamped log gives no gradient).
  - ``LeakyReLUConv2d``'s InstanceNorm is never applied in the official code (see ``nets.drit``), so
    D^c has no norm here either (``content_dis_norm: true`` adds it); ``dis_norm`` is not an option.
  - The epoch-end rule uses the number of batches Lightning runs (the datamodules drop a last
    incomplete batch); the official ``len(train_loader)`` counts that skipped batch (no difference
    for cat2dog's 1364 and portrait's 6452 images at batch 2). ``iteration`` counts every batch; the
    official ``total_it`` counts full iterations only.
  - ``half_size`` generalises the official fixed split of the batch (first image encoded, the rest
    real images for D_A2 / D_B2); the official batch 2 gives 1 + 1. A batch of ``half_size`` images or
    fewer is refused (the official loop skips any batch smaller than ``batch_size``; the suite's
    datamodules drop an incomplete last batch).
  - The unpaired datamodules index domain A and draw B at random; the official ``dataset_unpair``
    indexes the larger domain and draws the other at random (same epoch length, max(|A|, |B|)).
  - The grids (:meth:`visuals`) use mu for the attributes and no content noise (the official display
    comes from the training forward).
  - Network sizes are options (the defaults are the official networks) so that 32x32 images fit.
Departures from the paper [recalled, not checked against its text]: none beyond the code's own
(the content L2 term kl_content is the code's addition); the weights are the paper's λ_adv^content 1,
λ_cc 10, λ_adv^domain 1, λ_recon 10, λ_latent 10, λ_KL 0.01, mode seeking 1.
"""

from __future__ import annotations

import math

import torch

from lit_i2i.core.rng import same_random_state
from lit_i2i.core.losses import GANLoss, recon_loss
from lit_i2i.core.module import TranslationModule, frozen
from lit_i2i.errors import UserError
from lit_i2i.nets.drit import (
    AttributeEncoders,
    AttributeEncodersConcat,
    ConcatGenerators,
    ContentDiscriminator,
    ContentEncoders,
    FeatureWiseGenerators,
    gaussian_init_,
    image_discriminator,
    kl_attribute,
    l2_regularize,
    mode_seeking_loss,
)
from lit_i2i.nets.vae import unique_parameters

IMAGE_DS = ("dis_A", "dis_A2", "dis_B", "dis_B2")
EG = ("enc_c", "enc_a", "gen")
MODES = ("random", "reference", "reference_mean")


class DRIT(TranslationModule):
    method_name = "drit"
    directions = ("AtoB", "BtoA")

    def __init__(self, a_ch: int = 3, b_ch: int = 3, concat: bool = True, nz: int = 8, no_ms: bool = False,
                 ngf: int = 64, n_down: int = 2, n_res_content: int = 3, attr_ndf: int = 64, attr_blocks: int = 4,
                 gen_n_res: int | None = None, mlp_dim: int = 256,
                 dis_scale: int = 3, dis_ndf: int = 64, dis_n_layer: int | None = None, dis_spectral_norm: bool = False,
                 content_dis_n_down: int = 3, content_dis_kernel: int = 7, content_dis_last_kernel: int = 4,
                 content_dis_norm: bool = False, d_iter: int = 3, half_size: int = 1,
                 lambda_rec: float = 10.0, lambda_kl: float = 0.01, lambda_kl_content: float = 0.01,
                 lambda_latent: float = 10.0, lambda_ms: float = 1.0, ms_eps: float = 1e-5,
                 lambda_gan: float = 1.0, lambda_content_gan: float = 1.0,
                 lr: float = 1e-4, lr_dcontent: float | None = None, beta1: float = 0.5, beta2: float = 0.999,
                 weight_decay: float = 1e-4, content_clip: float = 5.0,
                 lr_policy: str = "lambda", n_ep: int = 1200, n_ep_decay: int = 600, lr_interval: str = "epoch"):
        if lr_policy not in ("lambda", "step"):
            raise ValueError(f"lr_policy must be 'lambda' or 'step' (options.py), got {lr_policy!r}")
        if d_iter < 1 or half_size < 1:
            raise ValueError(f"need d_iter >= 1 and half_size >= 1, got {d_iter} and {half_size}")
        # official lambda rule == the suite's linear rule with n_epochs = n_ep_decay + 1 (see schedules.py)
        policy = "constant" if n_ep_decay < 0 else ("linear" if lr_policy == "lambda" else "step")
        super().__init__(lr_policy=policy, n_epochs=n_ep_decay + 1, n_epochs_decay=n_ep - n_ep_decay,
                         lr_interval=lr_interval, lr_step_size=max(1, n_ep_decay), lr_gamma=0.1)
        self.save_hyperparameters()
        self.enc_c = ContentEncoders(a_ch, b_ch, ngf, n_down, n_res_content)
        ch = self.enc_c.out_channels
        if concat:
            self.enc_a = AttributeEncodersConcat(a_ch, b_ch, nz, attr_ndf, attr_blocks)
            self.gen = ConcatGenerators(a_ch, b_ch, ch, nz, 3 if gen_n_res is None else gen_n_res, n_down)
        else:
            self.enc_a = AttributeEncoders(a_ch, b_ch, nz, attr_ndf)
            self.gen = FeatureWiseGenerators(a_ch, b_ch, ch, nz, 4 if gen_n_res is None else gen_n_res, n_down, mlp_dim)
        for name, c in (("dis_A", a_ch), ("dis_A2", a_ch), ("dis_B", b_ch), ("dis_B2", b_ch)):
            setattr(self, name, image_discriminator(c, dis_scale, dis_ndf, dis_n_layer, dis_spectral_norm))
        self.dis_c = ContentDiscriminator(ch, content_dis_n_down, content_dis_kernel, content_dis_last_kernel,
                                          content_dis_norm)
        for net in (self.enc_c, self.enc_a, self.gen, self.dis_c, *(getattr(self, n) for n in IMAGE_DS)):
            gaussian_init_(net)
        self.gan = GANLoss("vanilla")
        self.gan_half = GANLoss("vanilla", real_label=0.5)  # the encoders' content target

    def setup(self, stage: str) -> None:
        """Before fitting: does the content discriminator fit the content codes of the data's images?
        (The CLI's size check runs the image networks only; D^c takes codes.)"""
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if stage != "fit" or dm is None or not hasattr(dm, "input_shapes"):
            return
        try:
            shapes = dm.input_shapes()
        except Exception:  # noqa: BLE001 - a datamodule that cannot tell its shapes is not checked
            return
        with same_random_state(), torch.no_grad():
            for domain, path, shape in shapes:
                if domain not in ("A", "B"):
                    continue
                try:
                    code = self.enc_c(torch.zeros(1, *shape, device=self.device), domain, noise=False)
                except RuntimeError:  # too small for the encoder itself: the CLI's size check says so
                    return
                try:
                    ok = self.dis_c(code).numel() > 0
                except RuntimeError:
                    ok = False
                if not ok:
                    raise UserError(f"image {path} is {shape[2]}x{shape[1]} (WxH): its {code.shape[3]}x{code.shape[2]} "
                                    "content code is too small for the content discriminator; set smaller "
                                    "model.content_dis_n_down / content_dis_kernel / content_dis_last_kernel "
                                    "(the official 3 / 7 / 4 fit codes of 54x54, i.e. 216x216 images) or use "
                                    "larger images")

    # ------------------------------------------------------------------ optimizers
    def build_optimizers(self):
        h = self.hparams
        kw = dict(betas=(h.beta1, h.beta2), weight_decay=h.weight_decay)
        lr_c = h.lr / 2.5 if h.lr_dcontent is None else h.lr_dcontent
        opts = {n: torch.optim.Adam(getattr(self, n).parameters(), lr=h.lr, **kw) for n in IMAGE_DS}
        opts["dis_c"] = torch.optim.Adam(self.dis_c.parameters(), lr=lr_c, **kw)
        opts.update({n: torch.optim.Adam(getattr(self, n).parameters(), lr=h.lr, **kw) for n in EG})
        return opts

    # ------------------------------------------------------------------ codes
    def attribute(self, x: torch.Tensor, domain: str, sample: bool = True, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(z, mu, logvar) of ``x``; z = mu + exp(logvar / 2) * eps when ``sample`` (VAE), else mu."""
        if not self.hparams.concat:
            z = self.enc_a(x, domain)
            return z, None, None
        mu, logvar = self.enc_a(x, domain)
        if not sample:
            return mu, mu, logvar
        eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
        return mu + eps * logvar.mul(0.5).exp(), mu, logvar

    def _randn(self, n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.hparams.nz, device=like.device, dtype=like.dtype, generator=generator)

    def split(self, a: torch.Tensor, b: torch.Tensor):
        h = self.hparams.half_size
        if len(a) <= h or len(b) <= h:
            raise UserError(f"DRIT needs batches of more than half_size={h} images per domain (the first {h} are "
                            f"encoded, the rest are real images for D_A2 / D_B2); got {len(a)} and {len(b)}: "
                            "set --data.init_args.batch_size 2 or more")
        return a[:h], a[h:], b[:h], b[h:]

    def forward_all(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The official ``forward`` on the encoded halves a, b (same order of random draws)."""
        ms = not self.hparams.no_ms
        v = {"real_A": a, "real_B": b, "c_A": self.enc_c(a, "A"), "c_B": self.enc_c(b, "B")}
        v["z_A"], v["mu_A"], v["logvar_A"] = self.attribute(a, "A")
        v["z_B"], v["mu_B"], v["logvar_B"] = self.attribute(b, "B")
        n = len(a)
        v["z_random"] = self._randn(n, a)
        if ms:
            v["z_random2"] = self._randn(n, a)
        for d, o in (("A", "B"), ("B", "A")):  # one batched pass per generator, as the official code
            content = [v[f"c_{o}"], v[f"c_{d}"], v[f"c_{o}"]] + ([v[f"c_{o}"]] if ms else [])
            attr = [v[f"z_{d}"], v[f"z_{d}"], v["z_random"]] + ([v["z_random2"]] if ms else [])
            out = self.gen(torch.cat(content), torch.cat(attr), d).split(n)
            names = [f"fake_{d}", f"self_{d}", f"random_{d}"] + ([f"random2_{d}"] if ms else [])
            v.update(zip(names, out))
        v["c_rec_B"], v["c_rec_A"] = self.enc_c(v["fake_A"], "A"), self.enc_c(v["fake_B"], "B")
        v["z_rec_A"] = self.attribute(v["fake_A"], "A")[0]
        v["z_rec_B"] = self.attribute(v["fake_B"], "B")[0]
        v["cyc_A"] = self.gen(v["c_rec_A"], v["z_rec_A"], "A")
        v["cyc_B"] = self.gen(v["c_rec_B"], v["z_rec_B"], "B")
        v["z_reg_A"] = self.attribute(v["random_A"], "A", sample=False)[0]  # mu (VAE) or the code
        v["z_reg_B"] = self.attribute(v["random_B"], "B", sample=False)[0]
        return v

    # ------------------------------------------------------------------ losses
    def kl_attr(self, v, d: str) -> torch.Tensor:
        return kl_attribute(v[f"mu_{d}"], v[f"logvar_{d}"]) if self.hparams.concat else l2_regularize(v[f"z_{d}"])

    def eg_losses(self, v) -> dict[str, torch.Tensor]:
        h = self.hparams
        out = {}
        for d, dis in (("A", self.dis_A), ("B", self.dis_B)):
            out[f"gan_{d}"] = h.lambda_gan * self.gan(dis(v[f"fake_{d}"]), True, for_discriminator=False)
            out[f"gan_content_{d}"] = h.lambda_content_gan * self.gan_half(self.dis_c(v[f"c_{d}"]), True)
            out[f"kl_attr_{d}"] = h.lambda_kl * self.kl_attr(v, d)
            out[f"kl_content_{d}"] = h.lambda_kl_content * l2_regularize(v[f"c_{d}"])
            out[f"cross_{d}"] = h.lambda_rec * recon_loss(v[f"cyc_{d}"], v[f"real_{d}"])
            out[f"self_{d}"] = h.lambda_rec * recon_loss(v[f"self_{d}"], v[f"real_{d}"])
        return out

    def g_alone_losses(self, v) -> dict[str, torch.Tensor]:
        h = self.hparams
        ms = not h.no_ms
        out = {}
        for d, dis in (("A", self.dis_A2), ("B", self.dis_B2)):
            gan2 = self.gan(dis(v[f"random_{d}"]), True, for_discriminator=False)
            if ms:
                gan2 = gan2 + self.gan(dis(v[f"random2_{d}"]), True, for_discriminator=False)
            out[f"gan2_{d}"] = h.lambda_gan * gan2
            out[f"latent_{d}"] = h.lambda_latent * (v[f"z_reg_{d}"].float() - v["z_random"].float()).abs().mean()
        if ms:
            for name, d in (("ms_AB", "B"), ("ms_BA", "A")):
                out[name] = h.lambda_ms * mode_seeking_loss(v[f"random_{d}"], v[f"random2_{d}"], v["z_random"],
                                                            v["z_random2"], h.ms_eps)
        return out

    def d_loss(self, dis, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.gan(dis(real), True) + self.gan(dis(fake.detach()), False)

    def content_d_loss(self, c_a: torch.Tensor, c_b: torch.Tensor) -> torch.Tensor:
        return self.gan(self.dis_c(c_a.detach()), False) + self.gan(self.dis_c(c_b.detach()), True)

    # ------------------------------------------------------------------ training
    def is_full_update(self, batch_idx: int) -> bool:
        """``train.py``: content D alone unless (i + 1) % d_iter == 0 or i is among the epoch's last two."""
        n = self._trainer.num_training_batches if self._trainer is not None else math.inf
        return (batch_idx + 1) % self.hparams.d_iter == 0 or (math.isfinite(n) and batch_idx >= n - 2)

    def training_step(self, batch, batch_idx):
        a, a_rand, b, b_rand = self.split(batch["A"], batch["B"])
        if not self.is_full_update(batch_idx):
            with torch.no_grad():  # the code detaches the codes: no encoder graph is needed
                c_a, c_b = self.enc_c(a, "A"), self.enc_c(b, "B")
            loss = self.content_d_loss(c_a, c_b)
            self.step("dis_c", loss, clip=self.hparams.content_clip)
            self.log_losses({"D_content": loss})
            return
        v = self.forward_all(a, b)
        ms = not self.hparams.no_ms
        d = {"D_A": self.d_loss(self.dis_A, a, v["fake_A"])}
        self.step("dis_A", d["D_A"])
        d["D_A2"] = self.d_loss(self.dis_A2, a_rand, v["random_A"])
        if ms:
            d["D_A2"] = d["D_A2"] + self.d_loss(self.dis_A2, a_rand, v["random2_A"])
        self.step("dis_A2", d["D_A2"])
        d["D_B"] = self.d_loss(self.dis_B, b, v["fake_B"])
        self.step("dis_B", d["D_B"])
        d["D_B2"] = self.d_loss(self.dis_B2, b_rand, v["random_B"])
        if ms:
            d["D_B2"] = d["D_B2"] + self.d_loss(self.dis_B2, b_rand, v["random2_B"])
        self.step("dis_B2", d["D_B2"])
        d["D_content"] = self.content_d_loss(v["c_A"], v["c_B"])
        self.step("dis_c", d["D_content"], clip=self.hparams.content_clip)
        g = self.update_eg(v)
        self.log_losses({"G": sum(g.values()), "D": sum(d.values()), **d, **g})

    def update_eg(self, v) -> dict[str, torch.Tensor]:
        """E^c, E^a, G on the EG terms, then E^c, G on the "G alone" terms, both gradients taken at the
        forward's weights (see the module docstring)."""
        with frozen(self.dis_c, *(getattr(self, n) for n in IMAGE_DS)):
            eg, alone = self.eg_losses(v), self.g_alone_losses(v)
        loss_eg, loss_alone = sum(eg.values()), sum(alone.values())
        opts = {n: self.optimizer(n) for n in EG}
        for o in opts.values():
            o.zero_grad(set_to_none=True)
        # the "G alone" gradients first, through the ordinary backward (gradient hooks, DDP, AMP scaling
        # all apply), kept aside: after the EG step the retained graph could not be back-propagated
        self.manual_backward(loss_alone, retain_graph=True)
        cg = unique_parameters(self.enc_c, self.gen)
        alone_grads = [p.grad for p in cg]
        for o in opts.values():
            o.zero_grad(set_to_none=True)  # E^a's share of the second loss is dropped, as the official code
        self.manual_backward(loss_eg)
        for n in EG:
            opts[n].step()
        for o in opts.values():
            o.zero_grad(set_to_none=True)
        for p, g in zip(cg, alone_grads):
            p.grad = g
        for n in ("enc_c", "gen"):
            opts[n].step()
        for o in opts.values():
            o.zero_grad(set_to_none=True)
        return {**eg, **alone}

    # ------------------------------------------------------------------ the one door
    @staticmethod
    def _domains(direction: str) -> tuple[str, str]:
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"DRIT translates ('AtoB', 'BtoA'), not {direction!r}")
        return (direction[0], direction[-1])

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None,
                  mode: str | None = None, seed: int | None = 0) -> torch.Tensor:
        """A->B: G_B(E^c_A(x), z), no content noise. ``mode``: ``random`` (z ~ N(0, I); the default
        without ``reference``), ``reference`` (z sampled from E^a_B(reference), the default with one)
        or ``reference_mean`` (z = mu of E^a_B(reference)). ``seed``: the random draws come from a
        generator seeded with it (None: the global RNG); ``mode="random:7"`` is seed 7 (for the CLI)."""
        src, tgt = self._domains(direction)
        mode, _, arg = (mode or ("random" if reference is None else "reference")).partition(":")
        if mode not in MODES:
            raise UserError(f"DRIT: unknown mode {mode!r}; choose one of {', '.join(MODES)} (random:SEED sets the seed)")
        if arg:  # "random:7" (the CLI passes the mode only)
            if not arg.lstrip("-").isdigit():
                raise UserError(f"DRIT: mode {mode}:SEED takes an integer seed, not {arg!r}")
            seed = int(arg)
        gen = None if seed is None else torch.Generator(device=x.device).manual_seed(int(seed))
        content = self.enc_c(x, src, noise=False)
        if mode == "random":
            z = self._randn(len(x), x, gen)
        else:
            if reference is None:
                raise UserError(f"DRIT: mode {mode!r} needs a reference image (--reference)")
            if len(reference) not in (1, len(x)):
                raise UserError(f"DRIT: {len(reference)} reference images for {len(x)} inputs (give 1 or {len(x)})")
            z = self.attribute(reference.to(x), tgt, sample=mode == "reference", generator=gen)[0]
            z = z.expand(len(x), -1)
        return self.gen(content, z, tgt)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, direction: str = "AtoB", n: int = 5, seed: int | None = 0) -> list[torch.Tensor]:
        """``n`` random-attribute translations of ``x`` (the official ``test.py --num``): output k is
        ``translate(x, direction, seed=seed + k)``, as :func:`lit_i2i.metrics.diversity.lpips_diversity`
        draws them."""
        return [self.translate(x, direction, seed=None if seed is None else seed + k) for k in range(n)]

    @torch.no_grad()
    def visuals(self, batch, n_random: int = 2):
        """Per domain: real, cross translation (the other row's attribute), ``n_random`` random-attribute
        outputs, self reconstruction, cross-cycle reconstruction (mu codes, no noise)."""
        a, b = batch["A"], batch["B"]
        c = {"A": self.enc_c(a, "A", noise=False), "B": self.enc_c(b, "B", noise=False)}
        z = {"A": self.attribute(a, "A", sample=False)[0], "B": self.attribute(b, "B", sample=False)[0]}
        fake = {"A": self.gen(c["B"], z["A"], "A"), "B": self.gen(c["A"], z["B"], "B")}
        out = {}
        for d, o, x in (("A", "B", a), ("B", "A", b)):
            out[f"real_{d}"] = x
            out[f"fake_{o}"] = fake[o]
            for i, y in enumerate(self.sample(x, f"{d}to{o}", n_random, seed=0)):
                out[f"random{i + 1}_{o}"] = y
            out[f"self_{d}"] = self.gen(c[d], z[d], d)
            c_back = self.enc_c(fake[o], o, noise=False)
            out[f"cyc_{d}"] = self.gen(c_back, self.attribute(fake[d], d, sample=False)[0], d)
        return out
