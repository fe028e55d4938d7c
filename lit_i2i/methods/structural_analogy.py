"""Structural analogy: Benaim, Mokady, Bermano, Cohen-Or, Wolf, "Structural-analogy from a Single
Image Pair", Computer Graphics Forum 2020. Follows rmokady/structural-analogy@95ddf63 (``train.py``,
``models.py``, ``utils.py``, ``imresize.py``; the code is built on SinGAN).

Two SinGAN pyramids, one per image, coarse to fine (``nets/singan.py``): at scale n the generators
G_a^n, G_b^n and WGAN patch critics D_a^n, D_b^n, width ``min(nfc * 2 ** (n // 4), 128)``, receptive
field 11x11; the finest ``switch_res`` scales are not residual. The default pyramid (img_size 220,
min_size 18) has 11 scales, 19 ... 220. Scale n trains for ``niter`` iterations while scales < n are
frozen; it starts from scale n-1's weights (G and D) when the width is unchanged.

Per iteration at scale n (one image pair; up(.) = the official bicubic upsampling of the frozen
coarser scales' output, ``rand``: random noise at every scale, ``rec``: noise at the coarsest only):

  fake_a = G_a(amp_a z + up_rand_a, up_rand_a)      (scale 0: G_a(z, 0))      random sample of A
  rec_a  = G_a(up_rec_a, up_rec_a)                  (scale 0: G_a(z, z))      reconstruction of A
  b2a    = G_a(fake_b, fake_b),  a2b = G_b(fake_a, fake_a)                    the translations
  (non-residual scales drop the second argument; likewise for B)

| term | formula | weight (default) |
|---|---|---|
| D (each domain) | -2 D_a(real_a) + D_a(b2a) + D_a(fake_a), fakes detached | 1 |
| gradient penalty | (‖∇ D_a(x̂)‖₂ - 1)², x̂ = u real_a + (1-u) fake, per pixel over channels, one u per image; for fake = b2a and fake = fake_a | lambda_grad = 0.1 each |
| gan_A | -D_a(b2a) - D_a(fake_a) | 1 |
| gan_B | -D_b(a2b) - D_b(fake_b) | lambda_g = 1 |
| rec_A, rec_B | MSE(rec_a, real_a), MSE(rec_b, real_b) | alpha = 1 |
| cycle_A | MSE(G_a(a2b, a2b), fake_a) (fake_a not detached) | beta = 10 (README; argparse: 1) |
| cycle_B | MSE(G_b(b2a, b2a), fake_b) | beta = 10 |

Noise amplitude of scale n > 0: ``noise_amp * RMSE(real, up_rec)`` (0.1 x the previous scales'
reconstruction error), measured once, at the scale's first iteration; scale 0 trains on unscaled
N(0, 1) but stores ``noise_amp`` (0.1), which is what the finer scales then feed it. Order per
iteration: one forward, one Adam step of both critics, one Adam step of both generators. Adam
(beta1 0.5, 0.999), lr_g 5e-4, lr_d 1e-4, no schedule. Sketch to image (README): lr_d 5e-4, lr_g 1e-4,
lambda_g 0.1.

Inference (the official ``eval.py`` does not run as committed; this is what it and the paper
describe): ``translate(x, "AtoB")`` resizes a real A image to the scale ``inject_level``, maps it
there with G_b (``G_b(x, x)``, the training translation) and runs the finer scales of B's pyramid
on it (noise + upsampled image, as B's samples); ``inject_level`` = the finest scale is
``eval.py``'s ``G_b(real_a, real_a)``, coarser levels let B's pyramid redraw more of the image.
``sample(n, domain)``: random samples of one image's patch distribution;
``translate(s, "AtoB", mode="sample")``: the translation the training makes of such samples, G_b of
the finest trained scale; ``sample_and_translate(n, direction)`` gives both.

Departures from the official code (none changes an update, except the RNG streams):
  - One ``lit-i2i fit`` trains all scales: the module builds the whole pyramid at construction
    (sizes from ``img_size``), and its iteration counter picks the scale (``iteration // niter``);
    the run stops itself after ``num_scales * niter`` iterations. One Adam pair per scale is created
    in ``configure_optimizers`` and only the current scale's pair is stepped; a pair is fresh when
    its scale starts, which is what the official per-scale rebuild gives (no LR schedule), and the
    finished scale's Adam state is dropped then. Resume is exact from any iteration (weights, Adam,
    noise amplitudes, the noise RNG); the official ``--load`` resumes at whole scales only. The
    progress bar shows ``scale``; each scale's start is printed. Steps do not use Lightning's
    ``toggle_optimizer``: each backward can only reach the stepped optimizer's parameters (the
    critics are frozen while the generators' loss is built), and toggling every optimizer's parameter
    flags twice per iteration cost a few percent on a CPU (22 optimizers for 11 scales).
  - Untrained scales are initialised (official ``weights_init``) at construction, not when their
    scale starts; when the width is unchanged they are overwritten by the previous scale's weights
    then, as in the official code.
  - BatchNorm uses the statistics of each call in every mode (``BatchStatNorm2d``): the official
    nets are always in train mode at batch size 1, frozen scales included, and never read their
    running statistics, so the function is the same; the dead running-statistics buffers are gone
    and Lightning's eval mode (validation, ``translate``) does not change the function. Images are
    processed one at a time (batch size 1) everywhere, as in the official code; training needs
    ``data.batch_size: 1``.
  - The noise of training comes from the module's own generator (seeded from the run's seed,
    checkpointed), so a resumed run draws what the uninterrupted one drew; the official code draws
    from the global CUDA/CPU RNGs. Inference draws from a generator seeded with ``seed`` (0).
  - Each scale's real image is the data's image (``data.size`` = ``img_size``, bilinear with
    antialiasing) resized bilinearly with antialiasing to the scale; the official code resizes the
    file with PIL's bilinear filter to each size. The upsampling between scales is the official one
    bit for bit (uint8 truncation, MATLAB bicubic, clamp; tested against ``imresize2``).
  - The gradient penalty interpolates with the detached fake, and the generator's backward does not
    compute critic gradients: the official code computes both and zeroes them before they are used.
    The unused ``noisy_real_a/b`` are not computed. ``--noise_amp_b`` (ignored by the official code:
    B uses A's initial amplitude) is one ``noise_amp``. ``max_nfc`` exposes the official width cap.
  - Iteration 0 of scale n feeds the current scale noise scaled by scale n-1's amplitude, as the
    official code does (it measures the new amplitude after drawing that noise).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_info
from torch import nn

from lit_i2i.core import TranslationModule
from lit_i2i.core.module import frozen
from lit_i2i.errors import UserError
from lit_i2i.nets.singan import (
    ScaleCritic,
    ScaleGenerator,
    pyramid_sizes,
    sa_init_,
    scale_width,
    upsample,
)


def pixel_gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """The official ``calc_gradient_penalty``: one interpolation coefficient for the batch, the
    gradient's L2 norm over channels at each pixel, mean of (norm - 1)^2. (``core.gradient_penalty``
    takes the norm over the whole image, one coefficient per sample.)"""
    u = torch.rand(1, device=real.device, dtype=real.dtype, generator=generator)
    x = (u * real + (1 - u) * fake.detach()).requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out), create_graph=True)
    return weight * ((grad.norm(2, dim=1) - 1) ** 2).mean()




class StructuralAnalogy(TranslationModule):
    """Two coupled SinGAN pyramids trained on one image pair, scale by scale (see the module docstring).

    Args:
        img_size: side of the (square) images and of the finest scale (official 220).
        min_size: side of the coarsest scale, about (official 18; the README's text setting: 25).
        max_size: the official ``max_size`` (it only changes the scale count above 250 px).
        scale_factor: the initial scale factor (0.75); the effective one follows from the sizes.
        nfc: channels of scales 0-3, doubled every 4 scales up to ``max_nfc``.
        min_nfc: the official ``min_nfc`` (the least width of the inner layers; doubles with nfc).
        max_nfc: the cap of the widths (official 128).
        num_layer: convolutions per network (5: receptive field 11x11).
        ker_size: kernel size (3).
        nc_im: image channels (3; 1 for grayscale data).
        switch_res: the finest ``switch_res`` scales are not residual (2).
        niter: iterations per scale (official 20,000).
        lr_g, lr_d: Adam learning rates of the generators and the critics (5e-4, 1e-4).
        beta1: Adam beta1 (0.5; beta2 0.999).
        lambda_grad: gradient-penalty weight (0.1).
        alpha: reconstruction weight (1).
        beta: cycle weight (10, the README's recommendation; the official argparse default is 1).
        lambda_g: weight of B's adversarial terms (1; sketch to image: 0.1).
        noise_amp: noise amplitude = noise_amp x the previous scales' reconstruction RMSE (0.1).
        inject_level: the scale where ``translate`` injects a real image (negative: from the finest).
        seed: offset of the training noise's seed (added to the run's seed) and the seed of inference noise.
    """

    method_name = "structural_analogy"
    directions = ("AtoB", "BtoA")

    def __init__(self, img_size: int = 220, min_size: int = 18, max_size: int = 250, scale_factor: float = 0.75,
                 nfc: int = 32, min_nfc: int = 32, max_nfc: int = 128, num_layer: int = 5, ker_size: int = 3,
                 nc_im: int = 3, switch_res: int = 2, niter: int = 20000, lr_g: float = 5e-4, lr_d: float = 1e-4,
                 beta1: float = 0.5, lambda_grad: float = 0.1, alpha: float = 1.0, beta: float = 10.0,
                 lambda_g: float = 1.0, noise_amp: float = 0.1, inject_level: int = -5, seed: int = 0):
        super().__init__(lr_policy="constant")
        self.save_hyperparameters()
        if niter < 1:
            raise UserError(f"model.niter must be at least 1, got {niter}")
        try:
            self.sizes, self.factor = pyramid_sizes(img_size, min_size, scale_factor, max_size)
        except ValueError as e:
            raise UserError(f"model: {e}") from None
        n = len(self.sizes)
        self.switch_scale = n - 1 - switch_res  # scales above it are not residual
        self.widths = [scale_width(k, nfc, max_nfc) for k in range(n)]
        self.resolve_inject(inject_level)
        nets = {}
        for name, cls in (("G_a", ScaleGenerator), ("G_b", ScaleGenerator), ("D_a", ScaleCritic), ("D_b", ScaleCritic)):
            scales = []
            for k in range(n):
                kw = dict(nc=nc_im, nfc=self.widths[k], min_nfc=scale_width(k, min_nfc, max_nfc),
                          num_layer=num_layer, ker=ker_size)
                if cls is ScaleGenerator:
                    kw["residual"] = self.residual(k)
                scales.append(sa_init_(cls(**kw)))
            nets[name] = nn.ModuleList(scales)
        self.G_a, self.G_b, self.D_a, self.D_b = nets["G_a"], nets["G_b"], nets["D_a"], nets["D_b"]
        # noise amplitude per (domain, scale), set at each scale's first iteration (checkpointed)
        self.register_buffer("noise_amps", torch.zeros(2, n))
        self._rng: torch.Generator | None = None
        self._rng_state: torch.Tensor | None = None

    # ------------------------------------------------------------------ the pyramid
    @property
    def num_scales(self) -> int:
        return len(self.sizes)

    def residual(self, k: int) -> bool:
        return k <= self.switch_scale

    def resolve_inject(self, level: int) -> int:
        n = self.num_scales
        k = level + n if level < 0 else level
        if not 0 <= k < n:
            raise UserError(f"model.inject_level: {level} is outside the pyramid's {n} scales (0..{n - 1}, or "
                            f"-{n}..-1 from the finest)")
        return k

    def scale_of(self, iteration: int) -> int:
        return min(iteration // self.hparams.niter, self.num_scales - 1)

    def top_scale(self) -> int:
        """The finest scale that has been trained (the current one during training)."""
        return self.scale_of(max(self.iteration - 1, 0))

    def total_iterations(self) -> int:
        return self.num_scales * self.hparams.niter

    def nets(self, domain: str) -> tuple[nn.ModuleList, nn.ModuleList, int]:
        if domain not in ("A", "B"):
            raise ValueError(f"domain must be 'A' or 'B', got {domain!r}")
        return (self.G_a, self.D_a, 0) if domain == "A" else (self.G_b, self.D_b, 1)

    def real(self, x: torch.Tensor, k: int) -> torch.Tensor:
        s = self.sizes[k]
        if tuple(x.shape[-2:]) == (s, s):
            return x
        return F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)

    def _noise(self, k: int, rng: torch.Generator | None) -> torch.Tensor:
        s = self.sizes[k]
        return torch.randn(1, self.hparams.nc_im, s, s, device=self.device, generator=rng)

    def gen(self, G: nn.Module, k: int, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        return G(x, base) if self.residual(k) else G(x)

    @torch.no_grad()
    def run_pyramid(self, domain: str, last: int, mode: str, rng: torch.Generator | None) -> torch.Tensor:
        """The output of scale ``last`` of ``domain``'s pyramid (the official ``draw_concat`` loop
        without its final upsampling): ``rand`` feeds amp_k z + up at every scale (zeros below scale
        0), ``rec`` feeds fresh noise at scale 0 only (``G(z, z)``)."""
        G, _, d = self.nets(domain)
        y = torch.zeros(1, self.hparams.nc_im, self.sizes[0], self.sizes[0], device=self.device)
        for k in range(last + 1):
            if k > 0:
                y = upsample(y, 1 / self.factor, (self.sizes[k], self.sizes[k]))
            if mode == "rand":
                x = self.noise_amps[d, k] * self._noise(k, rng) + y
            elif mode == "rec":
                x = y = self._noise(0, rng) if k == 0 else y
            else:
                raise ValueError(f"mode must be 'rand' or 'rec', got {mode!r}")
            y = self.gen(G[k], k, x, y)
        return y

    def draw(self, domain: str, n: int, mode: str, rng: torch.Generator | None) -> torch.Tensor:
        """Scale n's input from the frozen scales < n: ``draw_concat`` (upsampled and cropped)."""
        y = self.run_pyramid(domain, n - 1, mode, rng)
        return upsample(y, 1 / self.factor, (self.sizes[n], self.sizes[n]))

    # ------------------------------------------------------------------ optimizers
    def build_optimizers(self):
        h = self.hparams
        betas = (h.beta1, 0.999)
        opts = {}
        for k in range(self.num_scales):
            opts[f"D{k}"] = torch.optim.Adam([*self.D_a[k].parameters(), *self.D_b[k].parameters()], lr=h.lr_d,
                                             betas=betas)
            opts[f"G{k}"] = torch.optim.Adam([*self.G_a[k].parameters(), *self.G_b[k].parameters()], lr=h.lr_g,
                                             betas=betas)
        return opts

    def configure_optimizers(self):
        opts = self.make_optimizers()
        return list(opts.values())  # no LR schedule (official)

    def start_scale(self, n: int) -> None:
        """Scale n's first iteration: start from scale n-1's weights when the width is unchanged (G
        and D, both domains), drop the finished scale's Adam state."""
        if self.widths[n] == self.widths[n - 1]:
            for nets in (self.G_a, self.G_b, self.D_a, self.D_b):
                nets[n].load_state_dict(nets[n - 1].state_dict())
        for name in (f"D{n - 1}", f"G{n - 1}"):
            opt = self.optimizer(name)
            getattr(opt, "optimizer", opt).state.clear()

    # ------------------------------------------------------------------ training
    def train_rng(self) -> torch.Generator:
        if self._rng is None or self._rng.device != self.device:
            self._rng = torch.Generator(device=self.device)
            if self._rng_state is not None:
                self._rng.set_state(self._rng_state)
                self._rng_state = None
            else:
                self._rng.manual_seed(torch.initial_seed() + self.hparams.seed)
        return self._rng

    def on_fit_start(self) -> None:
        rank_zero_info(f"structural analogy: {self.num_scales} scales ({', '.join(map(str, self.sizes))} px), "
                       f"{self.hparams.niter} iterations each ({self.total_iterations()} in all), from iteration "
                       f"{self.iteration} (scale {self.scale_of(self.iteration)})")

    def on_train_batch_start(self, batch, batch_idx):
        if self.iteration >= self.total_iterations():  # e.g. resumed from a finished run's last checkpoint
            self.trainer.should_stop = True
            return -1
        return None

    def end_of_batch(self) -> None:
        super().end_of_batch()
        if self.iteration >= self.total_iterations() and self._trainer is not None:
            self.trainer.should_stop = True

    def training_step(self, batch, batch_idx):
        h = self.hparams
        if batch["A"].shape[0] != 1 or batch["B"].shape[0] != 1:
            raise UserError(f"structural analogy trains on one image pair at a time: set data.batch_size 1 "
                            f"(got {batch['A'].shape[0]})")
        n, i = self.scale_of(self.iteration), self.iteration % h.niter
        rng = self.train_rng()
        if i == 0:
            s = self.sizes[n]
            rank_zero_info(f"structural analogy: scale {n} of 0..{self.num_scales - 1} ({s}x{s}, width {self.widths[n]}, "
                           f"{'residual' if self.residual(n) else 'not residual'})")
            if n > 0:
                self.start_scale(n)
        reals = {"A": self.real(batch["A"], n), "B": self.real(batch["B"], n)}
        v = {}
        for dom, d in (("A", 0), ("B", 1)):
            G = self.nets(dom)[0][n]
            z = self._noise(n, rng)
            if n == 0:
                prev = torch.zeros_like(z)
                x = z
            else:
                prev = self.draw(dom, n, "rand", rng)
                amp = self.noise_amps[d, n] if i > 0 else self.noise_amps[d, n - 1]
                x = amp * z + prev
            v[f"fake_{dom}"] = self.gen(G, n, x, prev)
            rec_in = self._noise(n, rng) if n == 0 else self.draw(dom, n, "rec", rng)
            if i == 0:
                with torch.no_grad():
                    amp = 1.0 if n == 0 else torch.sqrt(F.mse_loss(reals[dom], rec_in))
                    self.noise_amps[d, n] = h.noise_amp * amp
            v[f"rec_{dom}"] = self.gen(G, n, rec_in, rec_in)
        Ga, Gb, Da, Db = self.G_a[n], self.G_b[n], self.D_a[n], self.D_b[n]
        v["b2a"] = self.gen(Ga, n, v["fake_B"], v["fake_B"])
        v["a2b"] = self.gen(Gb, n, v["fake_A"], v["fake_A"])

        # both critics, one Adam step
        d = {}
        for dom, D, mix in (("A", Da, v["b2a"]), ("B", Db, v["a2b"])):
            real, fake = reals[dom], v[f"fake_{dom}"]
            d[f"D_{dom}"] = -2 * D(real).mean() + D(mix.detach()).mean() + D(fake.detach()).mean()
            d[f"gp_{dom}"] = (pixel_gradient_penalty(D, real, mix, h.lambda_grad, rng)
                              + pixel_gradient_penalty(D, real, fake, h.lambda_grad, rng))
        loss_D = sum(d.values())
        self.step(f"D{n}", loss_D)

        # both generators, one Adam step (critics frozen)
        with frozen(Da, Db):
            g = {"gan_A": -Da(v["b2a"]).mean() - Da(v["fake_A"]).mean(),
                 "gan_B": h.lambda_g * (-Db(v["a2b"]).mean() - Db(v["fake_B"]).mean())}
            if h.alpha > 0:
                g["rec_A"] = h.alpha * F.mse_loss(v["rec_A"], reals["A"])
                g["rec_B"] = h.alpha * F.mse_loss(v["rec_B"], reals["B"])
            if h.beta > 0:
                g["cycle_A"] = h.beta * F.mse_loss(self.gen(Ga, n, v["a2b"], v["a2b"]), v["fake_A"])
                g["cycle_B"] = h.beta * F.mse_loss(self.gen(Gb, n, v["b2a"], v["b2a"]), v["fake_B"])
            loss_G = sum(g.values())
            self.step(f"G{n}", loss_G)
        if self.logging_step():  # self.log costs ~10% of a small scale's iteration on a CPU
            self.log("scale", float(n), prog_bar=True, on_step=True, on_epoch=False)
            self.log_losses({"G": loss_G, "D": loss_D, **d, **g})

    def step(self, name: str, loss: torch.Tensor, clip: float | None = None) -> None:
        """One Adam step of ``name`` (D<n> or G<n>). No ``toggle_optimizer``: the D losses see only
        detached fakes, the G losses are built with the critics frozen, and the coarser scales run
        without gradients, so the backward reaches only the stepped optimizer's parameters."""
        opt = self.optimizer(name)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if clip is not None:
            self.clip_gradients(opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        opt.step()
        opt.zero_grad(set_to_none=True)

    def log_losses(self, losses, prog_bar=("G", "D")) -> None:
        for k, val in losses.items():
            self.log(f"train/loss_{k}", val.detach(), prog_bar=k in prog_bar, on_step=True, on_epoch=False)

    # ------------------------------------------------------------------ inference
    def _eval_rng(self, seed: int | None) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.hparams.seed if seed is None else seed)

    def _to_display(self, y: torch.Tensor) -> torch.Tensor:
        s = self.hparams.img_size
        if tuple(y.shape[-2:]) == (s, s):
            return y
        return F.interpolate(y, size=(s, s), mode="bilinear", align_corners=False)

    @staticmethod
    def _domains(direction: str) -> tuple[str, str]:
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"StructuralAnalogy translates ('AtoB', 'BtoA'), not {direction!r}")
        return ("A", "B") if direction == "AtoB" else ("B", "A")

    def _cross(self, x: torch.Tensor, tgt: str, k: int, rng: torch.Generator) -> torch.Tensor:
        """One image (1CHW, scale k's size) mapped by the target pyramid at scale k, then refined by its
        finer trained scales (noise + upsampled image, as its samples)."""
        G, _, d = self.nets(tgt)
        y = self.gen(G[k], k, x, x)
        for m in range(k + 1, self.top_scale() + 1):
            up = upsample(y, 1 / self.factor, (self.sizes[m], self.sizes[m]))
            y = self.gen(G[m], m, self.noise_amps[d, m] * self._noise(m, rng) + up, up)
        return y

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None,
                  mode: str = "inject", inject_level: int | None = None, seed: int | None = None) -> torch.Tensor:
        """Translate images ``x`` (NCHW in [-1, 1], any size: resized to the pyramid's squares).

        ``mode="inject"``: x are real images of the source domain, injected at ``inject_level``
        (default: the model's) and finished by the target pyramid. ``mode="sample"``: x are samples
        of the source pyramid (``sample``), translated as in training: by the target generator of
        the finest trained scale. The noise of the finer scales comes from a generator seeded with
        ``seed`` (default: the model's). Output: img_size x img_size (while training, scales not
        trained yet are skipped and the result is enlarged bilinearly).
        """
        _, tgt = self._domains(direction)
        top = self.top_scale()
        if mode == "inject":
            k = min(self.resolve_inject(self.hparams.inject_level if inject_level is None else inject_level), top)
        elif mode == "sample":
            k = top
        else:
            raise UserError(f"--mode: structural analogy translates with mode 'inject' or 'sample', not {mode!r}")
        # each image on its own, with its own copy of the seeded noise: an output does not depend on
        # the other images of the batch
        return torch.cat([self._to_display(self._cross(self.real(xi, k), tgt, k, self._eval_rng(seed)))
                          for xi in x.split(1)])

    @torch.no_grad()
    def sample_and_translate(self, n: int = 1, direction: str = "AtoB", seed: int | None = None) -> dict:
        """``{"sample": n random samples of the source image's pyramid, "translation": each one
        translated as in training}``, img_size x img_size. The same seed gives the same samples as
        ``sample(n, source, seed)``."""
        src, tgt = self._domains(direction)
        rng, top = self._eval_rng(seed), self.top_scale()
        s = [self.run_pyramid(src, top, "rand", rng) for _ in range(n)]
        t = [self._cross(si, tgt, top, rng) for si in s]
        return {"sample": torch.cat([self._to_display(y) for y in s]),
                "translation": torch.cat([self._to_display(y) for y in t])}

    @torch.no_grad()
    def sample(self, n: int = 1, domain: str = "A", seed: int | None = None) -> torch.Tensor:
        """``n`` random samples of ``domain``'s pyramid (its image's patch distribution), img_size."""
        rng, top = self._eval_rng(seed), self.top_scale()
        return torch.cat([self._to_display(self.run_pyramid(domain, top, "rand", rng)) for _ in range(n)])

    @torch.no_grad()
    def visuals(self, batch):
        a = self._to_display(batch["A"][:1])
        b = self._to_display(batch["B"][:1])
        sa, sb = self.sample_and_translate(1, "AtoB"), self.sample_and_translate(1, "BtoA")
        return {"real_A": a, "fake_B": self.translate(a, "AtoB"), "real_B": b, "fake_A": self.translate(b, "BtoA"),
                "sample_A": sa["sample"], "sample_AtoB": sa["translation"],
                "sample_B": sb["sample"], "sample_BtoA": sb["translation"]}

    def io_channels(self):
        return {"A": ("nc_im", self.hparams.nc_im), "B": ("nc_im", self.hparams.nc_im)}

    # ------------------------------------------------------------------ exact resume
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self._rng is not None:
            checkpoint["sa_noise_rng"] = self._rng.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("sa_noise_rng")
        self._rng, self._rng_state = None, state
