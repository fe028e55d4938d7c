"""StarGAN v2: Choi, Uh, Yoo, Ha, "StarGAN v2: Diverse Image Synthesis for Multiple Domains", CVPR 2020.
Follows the official code, clovaai/stargan-v2@875b70a (``core/model.py``, ``core/solver.py``,
``core/data_loader.py``, ``main.py``).

Networks (:mod:`lit_i2i.nets.stargan_v2`): generator G, mapping network F (shared MLP + one head per
domain), style encoder E (one head per domain), discriminator D (one logit per domain), and the EMA
copies G_ema, F_ema, E_ema (beta 0.999), which are what :meth:`translate` and the grids use.

Per iteration, with a batch x of domains y, target domains y~ and references x_ref, x_ref2 of y~, and
z, z2 ~ N(0, I) (``latent_dim``); s~ = F(z, y~) in the latent steps, E(x_ref, y~) in the reference
steps, s~2 likewise from z2 / x_ref2:

| step | term | formula | weight |
|---|---|---|---|
| D (latent, then reference) | real | BCE(D(x, y), 1) | 1 |
| | fake | BCE(D(G(x, s~), y~), 0) (s~ and G(x, s~) without gradient) | 1 |
| | reg (R1) | 0.5 mean_n sum ||d D(x, y) / d x||^2 | ``lambda_reg`` = 1 |
| G (latent: G, F, E step; reference: G steps) | adv | BCE(D(G(x, s~), y~), 1) (non-saturating) | 1 |
| | sty | mean abs(E(G(x, s~), y~) - s~) | ``lambda_sty`` = 1 |
| | ds | mean abs(G(x, s~) - G(x, s~2)), G(x, s~2) detached, *subtracted* | ``lambda_ds`` (CelebA-HQ 1, AFHQ 2), minus ``lambda_ds / ds_iter`` after each iteration while positive, floored at 0 (0 after ``ds_iter`` = 100k) |
| | cyc | mean abs(G(G(x, s~), E(x, y)) - x) | ``lambda_cyc`` = 1 |

Step order (solver.py ``train``): D with a latent style, D with a reference style, G with a latent
style (the loss steps G, F and E), G with a reference style (only G steps); then the EMA of G, F, E
(``ema = lerp(param, ema, beta)``, parameters only: the nets have no running buffers); then the ds
weight decays. Optimizers: Adam, betas (0, 0.99), weight decay 1e-4 (L2 in the gradient), lr 1e-4 for
G, E, D and ``f_lr`` 1e-6 for F; no LR schedule. An iteration is 6 optimizer steps (D, D, G, F, E, G),
so the official 100k iterations are ``trainer.max_steps: 600000``.

Initialisation as the official: the nets are built with PyTorch's default init and the EMA copies are
taken *then*; only the trained nets get the Kaiming (``he_init``) init. So the EMA nets start from a
different random init and forget it at 0.999 per iteration (``ema_init: official``); ``ema_init:
copy`` starts them equal to the trained nets (for short runs).

Inference: ``translate(x, direction, reference=None, mode=None, seed=None)``: the target domain from
``direction`` (``"XtoY"``, a domain name or index); ``mode="latent"`` (or ``"random"``; the default
without a reference): styles F_ema(z, y) with z from ``seed`` (None: the global RNG);
``mode="reference"`` (the default with one): E_ema(reference, y), one reference for all or one per
image, read as an image of the target domain (as the official evaluation's references).
:meth:`sample` gives several latent outputs per input (the LPIPS-diversity protocol: 10 per input).
Grids: the source; for each of the first ``grid_domains`` domains, ``grid_styles`` latent styles
(seeds 0, 1, ...: a diversity grid, one input, several styles); a reference (the next image of the
fixed batch) and the output in its style.

Departures from the official code:
  - References come from the training batch: x_ref = x[perm] (a random permutation, y~ = y[perm]),
    x_ref2 a random other image of the batch with the same domain (x_ref itself when it is its domain's
    only image there). The official code draws them from a second loader (``ReferenceDataset``: pairs
    of images of one domain) and samples sources and references class-balanced (``WeightedRandomSampler``);
    the suite's datamodules give one uniformly shuffled batch.
  - ``w_hpf > 0`` (the official CelebA-HQ setting) needs the FAN face-landmark network (``core/wing.py``
    and its ``wing.ckpt``) for the masks of every generator call; lit-i2i does not ship it, so the
    method refuses ``w_hpf > 0`` (the networks themselves take ``masks``). ``experiments/stargan_v2/
    celeba_hq.yaml`` therefore trains with ``w_hpf 0``: one fewer down/up-sampling level (a 16 x 16
    bottleneck at 256 px, not 8 x 8), decoder shortcuts on, and no landmark-masked skips.
  - The ds weight stops at 0. The official repeated subtraction overshoots by one step: 100,000
    subtractions of 1e-5 from 1 leave 1.9e-12 > 0, so one more gives -1e-5, a (tiny) negative weight,
    i.e. a diversity *penalty*, for the rest of training (with a short ``ds_iter`` it is not tiny).
    Before that point the weights are the official ones, bit for bit.
  - The ds weight is checkpointed (official resume restarts it at its initial value: ``args.lambda_ds``
    is not in the checkpoint), so a resumed run continues exactly; so are the EMA nets and RNG states.
  - Data: the suite's resize (bicubic, antialiased) and flip; the official also applies, with
    probability 0.5, a random resized crop (scale 0.8-1.0, ratio 0.9-1.1) and resizes bilinearly.
  - The G step's loss is not backpropagated into D's parameters (the official computes those
    gradients and throws them away), nor, in the reference step, into E's and F's (not stepped there).
  - Truncation (``psi``, the official grids and videos) is not implemented; metrics use psi = 1 as the
    official evaluation does. The official FID uses torchvision's ImageNet Inception; the suite's
    ``fid`` uses the FID Inception weights: say which next to a number.
  - ``in_ch`` channels (official 3); ``base_dim`` / ``hidden_dim`` for small models (official
    2**14 // img_size and 512).
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

from lit_i2i.core.losses import GANLoss, r1_penalty
from lit_i2i.core.module import TranslationModule, frozen
from lit_i2i.errors import UserError
from lit_i2i.nets.stargan_v2 import Discriminator, Generator, MappingNetwork, StyleEncoder, he_init_

EMA_INITS = ("official", "copy")
NETS = (("G", "G_ema"), ("F", "F_ema"), ("E", "E_ema"))


@torch.no_grad()
def lerp_ema_(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """The official ``moving_average``: every parameter ``ema = lerp(net, ema, beta)`` (buffers untouched)."""
    for p, q in zip(net.parameters(), ema.parameters()):
        q.copy_(torch.lerp(p, q, beta))


class StarGANv2(TranslationModule):
    method_name = "stargan_v2"

    def __init__(self, img_size: int = 256, num_domains: int = 2, domains: list[str] | None = None,
                 latent_dim: int = 16, style_dim: int = 64, hidden_dim: int = 512, max_conv_dim: int = 512,
                 base_dim: int | None = None, in_ch: int = 3, w_hpf: float = 0.0,
                 lambda_reg: float = 1.0, lambda_sty: float = 1.0, lambda_ds: float = 1.0, ds_iter: int = 100_000,
                 lambda_cyc: float = 1.0, lr: float = 1e-4, f_lr: float = 1e-6, beta1: float = 0.0,
                 beta2: float = 0.99, weight_decay: float = 1e-4, ema_beta: float = 0.999, ema_init: str = "official",
                 grid_domains: int = 3, grid_styles: int = 3):
        super().__init__(lr_policy="constant")
        self.save_hyperparameters()
        if w_hpf > 0:
            raise UserError("model.w_hpf > 0 (the official CelebA-HQ setting) needs the FAN face-landmark network "
                            "(stargan-v2 core/wing.py and wing.ckpt) for its masks, which lit-i2i does not ship; "
                            "set model.init_args.w_hpf 0")
        if ema_init not in EMA_INITS:
            raise UserError(f"model.ema_init must be one of {', '.join(EMA_INITS)}, got {ema_init!r}")
        if domains is not None and len(domains) != num_domains:
            raise UserError(f"model.domains names {len(domains)} domains but model.num_domains is {num_domains}")
        if ds_iter < 1:
            raise UserError(f"model.ds_iter must be at least 1, got {ds_iter}")
        self.G = Generator(img_size, style_dim, max_conv_dim, w_hpf, in_ch, base_dim)
        self.F = MappingNetwork(latent_dim, style_dim, num_domains, hidden_dim)
        self.E = StyleEncoder(img_size, style_dim, num_domains, max_conv_dim, in_ch, base_dim)
        self.D = Discriminator(img_size, num_domains, max_conv_dim, in_ch, base_dim)
        if ema_init == "copy":
            he_init_(self.G, self.F, self.E, self.D)
        for net, ema in NETS:  # official: deep copies taken before he_init
            setattr(self, ema, copy.deepcopy(getattr(self, net)).requires_grad_(False))
        if ema_init == "official":
            he_init_(self.G, self.F, self.E, self.D)
        self.gan = GANLoss("vanilla")
        self.lambda_ds_now = float(lambda_ds)  # the decayed ds weight (checkpointed)

    # ------------------------------------------------------------------ domains and directions
    @property
    def domain_names(self) -> list[str]:
        names = self.hparams.domains
        return list(names) if names is not None else [str(k) for k in range(self.hparams.num_domains)]

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(f"{a}to{b}" for a, b in itertools.permutations(self.domain_names, 2))

    def target_index(self, direction) -> int:
        """The target domain of ``direction``: an index, a domain name, or ``"<source>to<target>"``."""
        names = self.domain_names
        if isinstance(direction, int) and not isinstance(direction, bool):
            if 0 <= direction < len(names):
                return direction
        elif isinstance(direction, str):
            if direction in names:
                return names.index(direction)
            for i in range(1, len(direction) - 2):
                if direction[i:i + 2] == "to" and direction[:i] in names and direction[i + 2:] in names:
                    return names.index(direction[i + 2:])
        raise UserError(f"--direction: {type(self).__name__} translates to one of its domains {', '.join(names)} "
                        f"(give '<source>to<target>', a domain name or an index), not {direction!r}")

    def io_channels(self) -> dict[str, tuple[str, int]]:
        return {"image": ("in_ch", int(self.hparams.in_ch))}

    def setup(self, stage: str | None = None) -> None:
        """The data's domains against the model's; unnamed model domains take the data's names."""
        dm = getattr(getattr(self, "_trainer", None), "datamodule", None)
        theirs = list(getattr(dm, "domains", ()) or ())
        if not theirs:
            return
        if len(theirs) != self.hparams.num_domains:
            raise UserError(f"the data has {len(theirs)} domains ({', '.join(theirs)}) but model.num_domains is "
                            f"{self.hparams.num_domains}; set --model.init_args.num_domains {len(theirs)}")
        if self.hparams.domains is None:
            self.hparams.domains = theirs  # saved with the checkpoint: translate() knows the names
        elif list(self.hparams.domains) != theirs:
            raise UserError(f"model.domains {list(self.hparams.domains)} differ from the data's {theirs}")

    # ------------------------------------------------------------------ optimizers and schedule
    def build_optimizers(self):
        h = self.hparams

        def adam(net, lr):
            return torch.optim.Adam(net.parameters(), lr=lr, betas=(h.beta1, h.beta2), weight_decay=h.weight_decay)
        return {"D": adam(self.D, h.lr), "G": adam(self.G, h.lr), "F": adam(self.F, h.f_lr), "E": adam(self.E, h.lr)}

    def step_together(self, names: tuple[str, ...], loss: torch.Tensor) -> None:
        """One backward of ``loss``, then a step of each named optimizer (the official G latent step)."""
        opts = [self.optimizer(n) for n in names]
        for o in opts:
            o.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        for o in opts:
            o.step()
        for o in opts:
            o.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ training
    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        if "image" not in batch or "label" not in batch:
            raise UserError(f"StarGAN v2 trains on multi-domain batches {{'image', 'label'}}, got {sorted(batch)}")
        x = batch["image"]
        y = torch.as_tensor(batch["label"], device=x.device).long()
        k, size = self.hparams.num_domains, self.hparams.img_size
        if (y < 0).any() or (y >= k).any():
            raise UserError(f"StarGAN v2 needs the domain label (0..{k - 1}) of every training image, got "
                            f"{sorted(set(y.tolist()))}; set data.init_args.labelled true")
        if tuple(x.shape[-2:]) != (size, size):
            raise UserError(f"the data's images are {x.shape[-1]}x{x.shape[-2]}, but model.img_size is {size} (the "
                            f"discriminator's head covers the whole image); set --model.init_args.img_size "
                            f"{x.shape[-1]} or the data's crop_size")
        return x, y

    @staticmethod
    def draw_references(x: torch.Tensor, y: torch.Tensor):
        """(y~, x_ref, x_ref2): the references of a batch (see the module docstring)."""
        n = len(x)
        perm = torch.randperm(n, device=x.device)
        y_trg = y[perm]
        w = (y[None, :] == y_trg[:, None]).float()  # w[i, j]: image j is of domain y~_i
        w[torch.arange(n, device=x.device), perm] = 0
        alone = w.sum(1) == 0
        w[alone, perm[alone]] = 1
        other = torch.multinomial(w, 1).squeeze(1)
        return y_trg, x[perm], x[other]

    def d_loss(self, x, y_org, y_trg, s_trg) -> dict[str, torch.Tensor]:
        """solver.py ``compute_d_loss`` with the style ``s_trg`` (latent or reference) already drawn."""
        x = x.detach().requires_grad_(True)
        out = self.D(x, y_org)
        d = {"real": self.gan(out, True), "reg": r1_penalty(out, x, gamma=1.0)}  # 0.5 mean sum ||grad||^2
        with torch.no_grad():
            fake = self.G(x.detach(), s_trg)
        d["fake"] = self.gan(self.D(fake, y_trg), False)
        d["total"] = d["real"] + d["fake"] + self.hparams.lambda_reg * d["reg"]
        return d

    def g_loss(self, x, y_org, y_trg, s_trg, s_trg2) -> dict[str, torch.Tensor]:
        """solver.py ``compute_g_loss`` given the two target styles (from F or E, with gradient)."""
        h = self.hparams
        fake = self.G(x, s_trg)
        with frozen(self.D):
            g = {"adv": self.gan(self.D(fake, y_trg), True, for_discriminator=False)}
        g["sty"] = (self.E(fake, y_trg) - s_trg).abs().mean()
        fake2 = self.G(x, s_trg2).detach()
        g["ds"] = (fake - fake2).abs().mean()
        rec = self.G(fake, self.E(x, y_org))
        g["cyc"] = (rec - x).abs().mean()
        g["total"] = g["adv"] + h.lambda_sty * g["sty"] - self.lambda_ds_now * g["ds"] + h.lambda_cyc * g["cyc"]
        return g

    def training_step(self, batch, batch_idx):
        h = self.hparams
        x, y_org = self._inputs(batch)
        y_trg, x_ref, x_ref2 = self.draw_references(x, y_org)
        z_trg = torch.randn(len(x), h.latent_dim, device=x.device)
        z_trg2 = torch.randn(len(x), h.latent_dim, device=x.device)
        losses: dict[str, torch.Tensor] = {}
        # D with a latent style, D with a reference style
        with torch.no_grad():
            s_lat, s_ref = self.F(z_trg, y_trg), self.E(x_ref, y_trg)
        for kind, s in (("latent", s_lat), ("ref", s_ref)):
            d = self.d_loss(x, y_org, y_trg, s)
            self.step("D", d["total"])
            losses.update({f"D_{kind}_{k}": v for k, v in d.items() if k != "total"})
            losses[f"D_{kind}"] = d["total"]
        # G with latent styles: G, F and E step
        g = self.g_loss(x, y_org, y_trg, self.F(z_trg, y_trg), self.F(z_trg2, y_trg))
        self.step_together(("G", "F", "E"), g["total"])
        losses.update({f"G_latent_{k}": v for k, v in g.items() if k != "total"})
        losses["G_latent"] = g["total"]
        # G with reference styles: G steps (E and F are used, not trained, here)
        with frozen(self.E, self.F):
            g = self.g_loss(x, y_org, y_trg, self.E(x_ref, y_trg), self.E(x_ref2, y_trg))
        self.step("G", g["total"])
        losses.update({f"G_ref_{k}": v for k, v in g.items() if k != "total"})
        losses["G_ref"] = g["total"]
        for net, ema in NETS:
            lerp_ema_(getattr(self, ema), getattr(self, net), h.ema_beta)
        losses["lambda_ds"] = torch.tensor(self.lambda_ds_now)
        if self.lambda_ds_now > 0:  # the official decay (same float arithmetic), stopped at 0
            self.lambda_ds_now = max(0.0, self.lambda_ds_now - h.lambda_ds / h.ds_iter)
        losses["D"] = losses["D_latent"] + losses["D_ref"]
        losses["G"] = losses["G_latent"] + losses["G_ref"]
        self.log_losses(losses)

    # ------------------------------------------------------------------ inference
    def latent(self, n: int, seed: int | None = None, device=None) -> torch.Tensor:
        """n latent codes: from ``seed`` (a CPU generator: the same codes on every device) or the global RNG."""
        device = device or self.device
        if seed is None:
            return torch.randn(n, self.hparams.latent_dim, device=device)
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(n, self.hparams.latent_dim, generator=g).to(device)

    @torch.no_grad()
    def style(self, n: int, target: int, reference: torch.Tensor | None = None, mode: str | None = None,
              seed: int | None = None, device=None) -> torch.Tensor:
        """(n, style_dim) target styles of domain ``target`` from the EMA nets."""
        mode = mode or ("reference" if reference is not None else "latent")
        if mode == "random":
            mode = "latent"
        if mode not in ("latent", "reference"):
            raise UserError(f"--mode: StarGAN v2 translates with mode latent (random, with a seed) or reference, "
                            f"not {mode!r}")
        if mode == "reference":
            if reference is None:
                raise UserError("mode reference needs a reference image (reference=..., --reference)")
            if len(reference) not in (1, n):
                raise UserError(f"{len(reference)} references for {n} images: give one, or one per image")
            y = torch.full((len(reference),), target, dtype=torch.long, device=reference.device)
            return self.E_ema(reference, y).expand(n, -1)
        z = self.latent(n, seed, device)
        return self.F_ema(z, torch.full((n,), target, dtype=torch.long, device=z.device))

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction=None, reference: torch.Tensor | None = None,
                  mode: str | None = None, seed: int | None = None) -> torch.Tensor:
        """``x`` translated to the target domain of ``direction`` by G_ema (see the module docstring)."""
        if direction is None:
            raise UserError("StarGAN v2 needs the target domain: direction='<source>to<target>', a name or an index")
        t = self.target_index(direction)
        ref = reference.to(x.device) if reference is not None else None
        return self.G_ema(x, self.style(len(x), t, ref, mode, seed, x.device))

    @torch.no_grad()
    def sample(self, x: torch.Tensor, direction, num: int = 10, seed: int | None = None) -> torch.Tensor:
        """(num, N, C, H, W): ``num`` latent-guided outputs per input (seeds seed, seed + 1, ... when given)."""
        return torch.stack([self.translate(x, direction, mode="latent", seed=None if seed is None else seed + k)
                            for k in range(num)])

    @torch.no_grad()
    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        h = self.hparams
        x = batch["image"]
        names = self.domain_names
        vis = {"source": x}
        for t in range(min(h.grid_domains, h.num_domains)):
            for k in range(h.grid_styles):
                vis[f"{names[t]} z{k}"] = self.translate(x, t, mode="latent", seed=k)
        y = torch.as_tensor(batch.get("label", torch.zeros(len(x))), device=x.device).long()
        y = y.clamp(0, h.num_domains - 1)  # unlabelled grids: domain 0's head
        ref, y_ref = x.roll(1, 0), y.roll(1, 0)
        vis["reference"] = ref
        vis["ref style"] = self.G_ema(x, self.E_ema(ref, y_ref))
        return vis

    # ------------------------------------------------------------------ exact resume
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["lambda_ds"] = float(self.lambda_ds_now)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.lambda_ds_now = float(checkpoint.get("lambda_ds", self.hparams.lambda_ds))
