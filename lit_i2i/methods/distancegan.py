"""DistanceGAN: Benaim and Wolf, "One-Sided Unsupervised Domain Mapping", NIPS 2017. Follows
sagiebenaim/DistanceGAN at f827205: ``cyclegan_arch/distance_gan_model.py`` (on its
``gan_model.py`` / ``cycle_gan_model.py`` / ``networks.py``, train options) and
``discogan_arch/distance_gan_model.py`` (on its ``disco_gan_model.py`` / ``model.py``, options), and
``cyclegan_arch/mnist_to_svhn`` (``solver.py``, ``model.py``, ``main.py``): :class:`DistanceDigitGAN`,
the paper's MNIST -> SVHN model, whose docstring has its own loss table.

The distance-preservation loss: for two images x_i, x_j of a batch from domain A and their
translations G(x_i), G(x_j), with d(u, v) = mean |u - v| and (mu_A, sigma_A), (mu_B, sigma_B) the mean
and standard deviation of d over a sample of each domain (computed once before training),

    L_dist_A = mean over pairs i < j of | (d(x_i, x_j) - mu_A) / sigma_A - (d(G(x_i), G(x_j)) - mu_B) / sigma_B |

(``unnormalized_distances``: without the standardisation). The self-distance form
(``use_self_distance``, which works with batch 1) compares the top and bottom halves instead:
| (d(top(x), bottom(x)) - mu_A) / sigma_A - (d(top(G(x)), bottom(G(x))) - mu_B) / sigma_B |, d taken over
the whole batch at once, and mu / sigma are then statistics of that half-distance. L_dist_B is the
same for B -> A. The statistics: over ``max_items`` (900) items of the training data, all pairs (or
each item's halves) of items, the population standard deviation; an item is one training *batch*
in the CycleGAN-architecture code (``set_expectation_and_std`` iterates its data loader) and one
*image* in the DiscoGAN-architecture code (it reads ``max_items`` image files); both are followed
(``DistanceGAN`` / ``DistanceDiscoGAN``). They are buffers, so checkpoints keep them and a resumed
run does not recompute them; they are computed at the start of ``fit`` from the training data
(a private shuffled pass with the random states kept, so the training batches are those of a run
without it), on rank 0 and broadcast under DDP.

``DistanceGAN`` (CycleGAN architecture, a ``CycleGAN`` subclass: its nets, pools, D loss and
optimizers): G_A: A -> B, G_B: B -> A, resnet_9blocks, 70x70 PatchGANs, LSGAN, pool 50, batch 2,
Adam(2e-4, 0.5) with the linear 100 + 100 epoch policy; ``nets: "2017"`` (default) builds the 2017
CycleGAN networks the DistanceGAN repository ships (``nets/distancegan.py``: zero padding, affine
InstanceNorm; 11,388,675 / 2,766,529 parameters), ``nets: current`` the suite's CycleGAN nets (with
CycleGAN's ``norm_D`` option, e.g. ``none`` for discriminators without InstanceNorm; not an official flag).

| term | formula | weight (default) |
|---|---|---|
| loss_G_A / loss_G_B | LSGAN(D_A(G_A(a)), real) / LSGAN(D_B(G_B(b)), real) | 1 |
| loss_distance_A / _B | L_dist_A / L_dist_B | lambda_distance_A / _B = 1 |
| loss_cycle_A / _B | ‖G_B(G_A(a)) − a‖₁ / ‖G_A(G_B(b)) − b‖₁, only with ``use_cycle_loss`` | lambda_A / lambda_B = 10 |
| loss_D_A / loss_D_B | ½ [LSGAN(D(real), real) + LSGAN(D(pool(fake)), fake)] | 1 |

``DistanceDiscoGAN`` (DiscoGAN architecture, a ``DiscoGAN`` subclass: its nets, rate curriculum,
update schedule, D loss and optimizers): the DiscoGAN terms with the reconstruction replaced by the
distance (images measured in [0, 1], as its code), rate = 0.01 for 10,000 iterations then 0.5,
one update per iteration (D when ``iteration % 3 == 0``, else G), batch 64, 64x64:

| term | formula | weight (default) |
|---|---|---|
| loss_G_A / loss_G_B | BCE(D_A(G_A(a)), real) / ... | 0.1 · (1 − rate) |
| loss_fm_A / loss_fm_B | DiscoGAN's feature matching | 0.9 · (1 − rate) |
| loss_distance_A / _B | L_dist_A / L_dist_B | rate |
| loss_cycle_A / _B | MSE on [0, 1] of the reconstruction, only with ``use_reconst_loss`` | rate |
| loss_D_A / loss_D_B | ½ [BCE(D(real), real) + BCE(D(G(.)), fake)] | 1 |

``num_layers`` is the official generator depth (4 at 64x64; 3 for edges2shoes / edges2handbags);
the discriminator keeps DiscoGAN's depth.

The official flags: ``direction`` ``AtoB`` / ``BtoA`` / ``both`` (``--A_to_B`` / ``--B_to_A`` /
neither; ``--model_arch distance_A_to_B`` / ``distance_B_to_A`` / ``distancegan``) trains only that
side's generator loss and discriminator (G_A's terms and D_A for AtoB); ``use_cycle_loss`` (CycleGAN
arch: both cycle terms, whatever the direction, as the code) / ``use_reconst_loss`` (DiscoGAN arch:
the trained sides' reconstruction terms); ``use_self_distance``; ``unnormalized_distances``;
``max_items``; ``lambda_distance_A`` / ``_B`` (CycleGAN arch only, as the code). A one-sided model
without the cycle translates only its direction.

Departures from the official code:
  - The statistics' self-distance halves are top and bottom in both architectures; the DiscoGAN-
    architecture code splits single images (C, H, W) along dim 2, i.e. into left and right halves,
    for the statistics while its loss splits batches into top and bottom.
  - The statistics' sample is drawn from the suite's training dataset (its transforms included) by a
    private shuffled loader: in the CycleGAN arch, batches of the training batch size, incomplete
    ones dropped (the code skips them too); B items are the B images of those batches (the suite
    pairs every A with a random B) where the code runs a separate B loader.
  - A batch of fewer than 2 images is skipped by the pairwise form (the CycleGAN-arch code skips
    every batch smaller than ``--batchSize``); smaller complete batches (the last of an epoch) are used.
  - Networks a step does not use are not run (e.g. G_B in a one-sided run without the cycle: the
    code computes G_B(b) and its loss and then drops them). Only BatchNorm statistics (DiscoGAN
    arch) could differ; the updates do not.
  - D_A and D_B share one Adam optimizer in the CycleGAN arch (the code has one each; Adam is
    per-parameter, so the updates are the same).
  - Not ported: the angle-pairing models (car2car, face2face, car2face: ``distance_gan_angle_pairing_model.py``).
  - The rest as the parent classes' docstrings (logits + BCE-with-logits, [-1, 1] images with tanh
    in the DiscoGAN arch, exact resume).
Departures from the paper: none known beyond the code's choices above (the paper's weights are the
code's defaults).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from lit_i2i.core.rng import same_random_state
from lit_i2i.core.losses import GANLoss, feature_matching_loss, recon_loss
from lit_i2i.core.module import TranslationModule
from lit_i2i.errors import UserError
from lit_i2i.methods.cyclegan import CycleGAN
from lit_i2i.methods.discogan import DiscoGAN
from lit_i2i.nets import DiscoGenerator, discogan_depth, init_weights
from lit_i2i.nets.distancegan import digit_discriminator, digit_generator, patchgan_2017, resnet_generator_2017

DIRECTIONS = ("both", "AtoB", "BtoA")


# ---------------------------------------------------------------------------------------- the loss
def mean_abs(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(x, y) = mean |x - y| over every element (the official ``distance``), in float32."""
    return (x.float() - y.float()).abs().mean()


def halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top and bottom halves along the height (the last but one dimension)."""
    if x.shape[-2] % 2:
        raise UserError(f"the self-distance needs an even image height, got {x.shape[-2]}")
    return torch.chunk(x, 2, dim=-2)


def pair_distances(x: torch.Tensor) -> torch.Tensor:
    """d(x_i, x_j) for every pair i < j of the leading dimension, (M*(M-1)/2,), differentiable."""
    flat = x.flatten(1).float()
    return torch.cat([(flat[i + 1:] - flat[i]).abs().mean(1) for i in range(len(flat) - 1)])


def self_distance(x: torch.Tensor) -> torch.Tensor:
    top, bottom = halves(x)
    return mean_abs(top, bottom)


def distance_gap(d_real: torch.Tensor, d_fake: torch.Tensor, real_stats=(0.0, 1.0), fake_stats=(0.0, 1.0)) -> torch.Tensor:
    """L_dist from the two sides' distances: mean | (d_real - mu_r) / sigma_r - (d_fake - mu_f) / sigma_f |
    (the default (0, 1) statistics: the unnormalised form)."""
    (mu_r, sd_r), (mu_f, sd_f) = real_stats, fake_stats
    return ((d_real - mu_r) / sd_r - (d_fake - mu_f) / sd_f).abs().mean()


@torch.no_grad()
def distance_statistics(items: torch.Tensor, use_self_distance: bool = False) -> tuple[float, float]:
    """(mean, population std) of the distances of ``items`` (M, ...): over all pairs of items, or
    (self distance) over each item's top-bottom distance, as ``get_expectation`` / ``get_std``."""
    if use_self_distance:
        d = torch.stack([self_distance(item) for item in items]).double()
    else:
        if len(items) < 2:
            raise UserError(f"the distance statistics need at least 2 items of each domain, got {len(items)}")
        flat = items.flatten(1).float()
        full = torch.cdist(flat[None], flat[None], p=1)[0] / flat.shape[1]
        i, j = torch.triu_indices(len(flat), len(flat), 1)
        d = full[i, j].double()
    mean = d.mean()
    return float(mean), float(((d - mean) ** 2).mean().sqrt())


class DistancePreservation:
    """What both architectures share: the statistics (buffers), their computation at the start of fit
    and the loss. The host class sets ``stats_unit`` ("batches" or "images") and ``distance_scale``
    (1 for [-1, 1] images; 0.5 measures them in [0, 1], as the DiscoGAN-arch code)."""

    stats_unit = "batches"
    distance_scale = 1.0

    def init_distance(self) -> None:
        self.register_buffer("distance_stats", torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64))  # mu_A sd_A mu_B sd_B
        self.register_buffer("distance_stats_ready", torch.zeros((), dtype=torch.bool))

    @property
    def normalize(self) -> bool:
        return not self.hparams.unnormalized_distances

    def active(self, side: str) -> bool:
        """Whether the A -> B (``"A"``) or B -> A (``"B"``) side is trained."""
        d = self.hparams.direction
        return d == "both" or (d == "AtoB") == (side == "A")

    # ---------------------------------------------------------------- the statistics
    def set_distance_statistics(self, items_a: torch.Tensor, items_b: torch.Tensor) -> None:
        s = self.distance_scale
        mu_a, sd_a = distance_statistics(items_a * s, self.hparams.use_self_distance)
        mu_b, sd_b = distance_statistics(items_b * s, self.hparams.use_self_distance)
        if min(sd_a, sd_b) <= 0:
            raise UserError(f"the distance statistics have a zero standard deviation (A {sd_a:g}, B {sd_b:g}) over "
                            f"{len(items_a)} / {len(items_b)} items: too few items or all alike; use more data, a larger "
                            "max_items or unnormalized_distances")
        self.distance_stats.copy_(torch.tensor([mu_a, sd_a, mu_b, sd_b], dtype=torch.float64))
        self.distance_stats_ready.fill_(True)

    def statistics_sample(self, loader) -> tuple[torch.Tensor, torch.Tensor]:
        """``max_items`` items of each domain from the training data (see the module docstring)."""
        n = self.hparams.max_items
        dataset = getattr(loader, "dataset", None)
        if dataset is None:
            raise UserError("DistanceGAN computes its distance statistics from the training DataLoader's dataset; "
                            "this run's training data has none (or set unnormalized_distances: true)")
        batches = self.stats_unit == "batches"
        bs = getattr(loader, "batch_size", None) or 1
        sampler_gen = torch.Generator().manual_seed(0)
        dl = DataLoader(dataset, batch_size=bs if batches else min(64, n), shuffle=True, generator=sampler_gen,
                        drop_last=batches, collate_fn=loader.collate_fn, num_workers=0)
        a, b, count = [], [], 0
        for batch in dl:
            if batches:
                a.append(batch["A"][None]), b.append(batch["B"][None])
                count += 1
            else:
                a.append(batch["A"]), b.append(batch["B"])
                count += len(batch["A"])
            if count >= n:
                break
        if not a:
            raise UserError(f"no complete training batch of {bs} images for the distance statistics")
        return torch.cat(a)[:n], torch.cat(b)[:n]

    def compute_distance_statistics(self) -> None:
        trainer = self.trainer
        if trainer.is_global_zero:
            with same_random_state():
                a, b = self.statistics_sample(trainer.train_dataloader)
            self.set_distance_statistics(a.to(self.device), b.to(self.device))
        stats = trainer.strategy.broadcast(self.distance_stats.clone(), src=0)
        self.distance_stats.copy_(stats.to(self.distance_stats))
        self.distance_stats_ready.fill_(True)

    def on_train_start(self) -> None:
        bs = getattr(self.trainer.train_dataloader, "batch_size", None)
        if not self.hparams.use_self_distance and bs is not None and bs < 2:
            raise UserError(f"DistanceGAN's pairwise distance needs batches of at least 2 images, got batch_size {bs} "
                            "(the official default is 2); or set use_self_distance: true")
        if self.normalize and not bool(self.distance_stats_ready):
            self.compute_distance_statistics()

    # ---------------------------------------------------------------- the loss
    def _stats(self, domain: str):
        """(mu, sigma) of ``domain``'s distances, float32; (0, 1) for the unnormalised form."""
        if not self.normalize:
            return 0.0, 1.0
        if not getattr(self, "_stats_seen_ready", False):  # read the flag once: bool() of a GPU buffer syncs
            if not bool(self.distance_stats_ready):
                raise RuntimeError("the distance statistics are not set: they are computed at the start of fit "
                                   "(or call set_distance_statistics)")
            self._stats_seen_ready = True  # the flag only goes from unset to set (statistics are never cleared)
        mu, sd = (self.distance_stats[:2] if domain == "A" else self.distance_stats[2:]).float()
        return mu, sd

    def distance_loss(self, real: torch.Tensor, fake: torch.Tensor, real_domain: str) -> torch.Tensor:
        """L_dist between a batch of ``real_domain`` and its translations (of the other domain)."""
        s = self.distance_scale
        fake_domain = "B" if real_domain == "A" else "A"
        if self.hparams.use_self_distance:
            d_real, d_fake = self_distance(real) * s, self_distance(fake) * s
        else:
            d_real, d_fake = pair_distances(real) * s, pair_distances(fake) * s
        return distance_gap(d_real, d_fake, self._stats(real_domain), self._stats(fake_domain))

    def batch_usable(self, batch) -> bool:
        return self.hparams.use_self_distance or min(len(batch["A"]), len(batch["B"])) >= 2

    def distance_terms(self, v: dict, weight_A: float, weight_B: float) -> dict[str, torch.Tensor]:
        terms = {}
        if self.active("A"):
            terms["distance_A"] = self.distance_loss(v["real_A"], v["fake_B"], "A") * weight_A
        if self.active("B"):
            terms["distance_B"] = self.distance_loss(v["real_B"], v["fake_A"], "B") * weight_B
        return terms

    def one_sided_directions(self, cycle: bool) -> None:
        if self.hparams.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.hparams.direction!r}")
        if self.hparams.direction != "both" and not cycle:  # the other generator is never trained
            d = self.hparams.direction
            self.directions = (d,)
            self.generators = {d: type(self).generators[d]}

    @torch.no_grad()
    def visuals(self, batch):
        v = {}
        if "AtoB" in self.directions:
            v.update(real_A=batch["A"], fake_B=self.translate(batch["A"], "AtoB"))
        if "BtoA" in self.directions:
            v.update(real_B=batch["B"], fake_A=self.translate(batch["B"], "BtoA"))
        return v


# ---------------------------------------------------------------------------------------- CycleGAN architecture
class DistanceGAN(DistancePreservation, CycleGAN):
    method_name = "distancegan"
    stats_unit = "batches"
    distance_scale = 1.0

    def __init__(self, netG: str = "resnet_9blocks", netD: str = "basic", nets: str = "2017", ngf: int = 64,
                 ndf: int = 64, n_layers_D: int = 3, n_blocks: int | None = None, n_down: int = 2,
                 norm: str = "instance", init_type: str = "normal", init_gain: float = 0.02, in_ch: int = 3,
                 out_ch: int = 3, gan_mode: str = "lsgan", direction: str = "both", use_cycle_loss: bool = False,
                 lambda_A: float = 10.0, lambda_B: float = 10.0, lambda_distance_A: float = 1.0,
                 lambda_distance_B: float = 1.0, use_self_distance: bool = False, unnormalized_distances: bool = False,
                 max_items: int = 900, pool_size: int = 50, lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999,
                 lr_policy: str = "linear", n_epochs: int = 100, n_epochs_decay: int = 100, lr_interval: str = "epoch",
                 ema_decay: float | None = None, norm_D: str | None = None):
        if nets not in ("2017", "current"):
            raise ValueError(f"nets must be '2017' (the DistanceGAN repository's) or 'current', got {nets!r}")
        if nets == "2017" and norm != "instance":
            raise ValueError("nets: '2017' is the instance-norm version of the 2017 networks; use nets: current for "
                             f"norm {norm!r}")
        if nets == "2017" and norm_D not in (None, "instance"):
            raise ValueError("nets: '2017' has instance-norm discriminators; use nets: current for norm_D "
                             f"{norm_D!r}")
        super().__init__(netG=netG, netD=netD, ngf=ngf, ndf=ndf, n_layers_D=n_layers_D, n_blocks=n_blocks,
                         n_down=n_down, norm=norm, init_type=init_type, init_gain=init_gain, in_ch=in_ch, out_ch=out_ch,
                         gan_mode=gan_mode, lambda_A=lambda_A, lambda_B=lambda_B, lambda_identity=0.0,
                         pool_size=pool_size, lr=lr, beta1=beta1, beta2=beta2, lr_policy=lr_policy, n_epochs=n_epochs,
                         n_epochs_decay=n_epochs_decay, lr_interval=lr_interval, ema_decay=ema_decay, norm_D=norm_D)
        self.init_distance()
        self.one_sided_directions(use_cycle_loss)

    def build_cycle_nets(self, netG, netD, in_ch, out_ch, g, d) -> None:
        if self.hparams.nets != "2017":
            return super().build_cycle_nets(netG, netD, in_ch, out_ch, g, d)
        if netG.startswith("unet") or netD == "pixel":
            raise ValueError("nets: '2017' builds the ResNet generators and PatchGANs; use nets: current for "
                             f"{netG} / {netD}")
        blocks = {"resnet_9blocks": 9, "resnet_6blocks": 6}.get(netG, g["n_blocks"] if g["n_blocks"] is not None else 6)
        layers = 3 if netD == "basic" else d["n_layers"]
        kw = dict(ngf=g["ngf"], n_blocks=blocks, n_down=g["n_down"], init_gain=g["init_gain"])
        self.netG_A = resnet_generator_2017(in_ch, out_ch, **kw)
        self.netG_B = resnet_generator_2017(out_ch, in_ch, **kw)
        self.netD_A = patchgan_2017(out_ch, d["ndf"], layers, d["init_gain"])
        self.netD_B = patchgan_2017(in_ch, d["ndf"], layers, d["init_gain"])

    def forward_cycle(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        cycle = self.hparams.use_cycle_loss
        v = {"real_A": real_A, "real_B": real_B}
        if self.active("A") or cycle:
            v["fake_B"] = self.netG_A(real_A)
        if self.active("B") or cycle:
            v["fake_A"] = self.netG_B(real_B)
        if cycle:
            v["rec_A"], v["rec_B"] = self.netG_B(v["fake_B"]), self.netG_A(v["fake_A"])
        return v

    def generator_losses(self, v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.hparams
        terms = {}
        if self.active("A"):
            terms["G_A"] = self.gan(self.netD_A(v["fake_B"]), True, for_discriminator=False)
        if self.active("B"):
            terms["G_B"] = self.gan(self.netD_B(v["fake_A"]), True, for_discriminator=False)
        terms.update(self.distance_terms(v, h.lambda_distance_A, h.lambda_distance_B))
        if h.use_cycle_loss:  # both cycle terms, whatever the direction (the code's backward_G)
            terms["cycle_A"] = recon_loss(v["rec_A"], v["real_A"]) * h.lambda_A
            terms["cycle_B"] = recon_loss(v["rec_B"], v["real_B"]) * h.lambda_B
        return terms

    def training_step(self, batch, batch_idx):
        if not self.batch_usable(batch):
            return
        v = self.forward_cycle(batch["A"], batch["B"])
        g = self.generator_losses(v)
        loss_G = sum(g.values())
        self.step("G", loss_G)
        logs = {"G": loss_G, **g}
        loss_D = 0.0
        if self.active("A"):
            logs["D_A"] = self.discriminator_loss(self.netD_A, v["real_B"], self.pools["fake_B"].query(v["fake_B"].detach()))
            loss_D = loss_D + logs["D_A"]
        if self.active("B"):
            logs["D_B"] = self.discriminator_loss(self.netD_B, v["real_A"], self.pools["fake_A"].query(v["fake_A"].detach()))
            loss_D = loss_D + logs["D_B"]
        self.step("D", loss_D)
        self.log_losses({**logs, "D": loss_D})


# ---------------------------------------------------------------------------------------- DiscoGAN architecture
class DistanceDiscoGAN(DistancePreservation, DiscoGAN):
    method_name = "distancegan_disco"
    stats_unit = "images"
    distance_scale = 0.5  # the DiscoGAN-arch code measures [0, 1] images

    def __init__(self, image_size: int = 64, num_layers: int | None = None, ngf: int = 64, ndf: int = 64,
                 norm: str = "batch", init_type: str = "none", init_gain: float = 0.02, in_ch: int = 3, out_ch: int = 3,
                 gan_mode: str = "vanilla", gan_weight: float = 0.1, fm_weight: float = 0.9,
                 starting_rate: float = 0.01, default_rate: float = 0.5, gan_curriculum: int = 10000,
                 update_interval: int | None = 3, direction: str = "both", use_reconst_loss: bool = False,
                 use_self_distance: bool = False, unnormalized_distances: bool = False, max_items: int = 900,
                 lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999, weight_decay: float = 1e-5,
                 lr_policy: str = "constant", n_epochs: int = 100, n_epochs_decay: int = 100, lr_interval: str = "epoch",
                 ema_decay: float | None = None):
        hparams = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        DiscoGAN.__init__(self, image_size=image_size, ngf=ngf, ndf=ndf, norm=norm, init_type=init_type,
                          init_gain=init_gain, in_ch=in_ch, out_ch=out_ch, gan_mode=gan_mode, gan_weight=gan_weight,
                          fm_weight=fm_weight, starting_rate=starting_rate, default_rate=default_rate,
                          gan_curriculum=gan_curriculum, update_interval=update_interval, lr=lr, beta1=beta1,
                          beta2=beta2, weight_decay=weight_decay, lr_policy=lr_policy, n_epochs=n_epochs,
                          n_epochs_decay=n_epochs_decay, lr_interval=lr_interval, ema_decay=ema_decay)
        self.save_hyperparameters(hparams)  # this signature's, replacing DiscoGAN's
        if num_layers is not None and num_layers != discogan_depth(image_size):
            # the official --num_layers: the generators' depth only (its discriminator is fixed)
            self.netG_A = init_weights(DiscoGenerator(in_ch, out_ch, ngf, num_layers, norm), init_type, init_gain)
            self.netG_B = init_weights(DiscoGenerator(out_ch, in_ch, ngf, num_layers, norm), init_type, init_gain)
            self.setup_ema()
        self.init_distance()
        self.one_sided_directions(use_reconst_loss)

    def forward_cycle(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        v = {"real_A": real_A, "real_B": real_B, "fake_B": self.netG_A(real_A), "fake_A": self.netG_B(real_B)}
        if self.hparams.use_reconst_loss:
            v["rec_A"], v["rec_B"] = self.netG_B(v["fake_B"]), self.netG_A(v["fake_A"])
        return v

    def generator_losses(self, v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """DiscoGAN's terms of the trained sides, the distance in place of the reconstruction."""
        h, rate = self.hparams, self.rate()
        adv = 1.0 - rate
        terms = {}
        for side, netD, real, fake in (("A", self.netD_A, v["real_B"], v["fake_B"]),
                                       ("B", self.netD_B, v["real_A"], v["fake_A"])):
            if not self.active(side):
                continue
            pred_fake, feats_fake = netD.forward_features(fake)
            _, feats_real = netD.forward_features(real)
            terms[f"G_{side}"] = self.gan(pred_fake, True, for_discriminator=False) * h.gan_weight * adv
            terms[f"fm_{side}"] = feature_matching_loss(feats_real, feats_fake) * h.fm_weight * adv
            if h.use_reconst_loss:  # the code's MSE on [0, 1] images
                terms[f"cycle_{side}"] = recon_loss((v[f"rec_{side}"] + 1) / 2, (v[f"real_{side}"] + 1) / 2, "mse") * rate
        terms.update(self.distance_terms(v, rate, rate))
        return terms

    def training_step(self, batch, batch_idx):
        if not self.batch_usable(batch):
            return
        steps, rate = self.updates(), self.rate()
        logs: dict[str, torch.Tensor] = {}
        if "G" in steps:
            v = self.forward_cycle(batch["A"], batch["B"])
            g = self.generator_losses(v)
            loss_G = sum(g.values())
            self.step("G", loss_G)
            logs.update(G=loss_G, **g)
            fake_B, fake_A = v["fake_B"].detach(), v["fake_A"].detach()
        else:
            with torch.no_grad():
                fake_B = self.netG_A(batch["A"]) if self.active("A") else None
                fake_A = self.netG_B(batch["B"]) if self.active("B") else None
        if "D" in steps:
            loss_D = 0.0
            if self.active("A"):
                logs["D_A"] = self.discriminator_loss(self.netD_A, batch["B"], fake_B)
                loss_D = loss_D + logs["D_A"]
            if self.active("B"):
                logs["D_B"] = self.discriminator_loss(self.netD_B, batch["A"], fake_A)
                loss_D = loss_D + logs["D_B"]
            self.step("D", loss_D)
            logs["D"] = loss_D
        self.log_losses(logs)
        if self.logging_step():
            self.log("train/rate", rate, on_step=True, on_epoch=False)


# ---------------------------------------------------------------------------------------- the MNIST -> SVHN model
class DistanceDigitGAN(DistancePreservation, TranslationModule):
    """DistanceGAN's digit model (``cyclegan_arch/mnist_to_svhn``: ``solver.py``, ``model.py``, ``main.py``),
    the model behind the paper's MNIST -> SVHN accuracy experiment: the small mnist-svhn-transfer nets
    (``nets.distancegan.digit_generator`` G12 / G21, ``digit_discriminator`` D1 / D2), both directions
    always trained, the cycle (``use_reconst_loss``, the paper's CycleGAN row) and the distance
    (``use_distance_loss``, pairwise; or ``use_self_distance``) as switches. Batch 16, 40,000 iterations,
    Adam(2e-4, 0.5, 0.999) for G12 + G21 together and for D1 + D2 together, constant learning rate.

    One iteration, in the code's order (a, b: a batch of each domain; LSGAN with targets 1 / 0):

    1. D on real: mean (D1(a) - 1)² + mean (D2(b) - 1)², a D step;
    2. D on fakes: mean D2(G12(a))² + mean D1(G21(b))², a D step;
    3. G on a -> b -> a, a G step:

       | term | formula | weight (default) |
       |---|---|---|
       | loss_G_A | mean (D2(G12(a)) - 1)² | 1 |
       | loss_reconst_A | mean (a - G21(G12(a)))², only with ``use_reconst_loss`` | 1 |
       | loss_distance_A | L_dist_A(a, G12(a)) (module docstring; pairwise, or the self-distance) | lambda_distance_A = 0.05 |

    4. G on b -> a -> b, a G step: loss_G_B = mean (D1(G21(b)) - 1)², loss_reconst_B = mean (b - G12(G21(b)))²,
       loss_distance_B = L_dist_B(b, G21(b)) x lambda_distance_B = 0.1.

    The statistics: ``max_items`` (400) training batches of each domain, a batch as the item (the
    CycleGAN-architecture unit), standardised unless ``unnormalized_distances``; computed only when a
    distance term is on (as the code).

    Faithful details kept: G's two steps share one Adam; in step 3 without the cycle G21 gets a zero
    gradient and is still stepped by Adam (its momentum moves it), as PyTorch 0.3's in-place
    ``zero_grad`` made the code do (``step(..., zero_fill=True)``), and the same for G12 in step 4;
    the reconstruction is computed even when its loss is off (its BatchNorm running statistics).

    Departures from the official code:
      - ``in_ch`` / ``out_ch`` (official: MNIST 1 channel, SVHN 3): the suite's digit data are 3-channel
        (MNIST as grey RGB), so the defaults are 3 / 3 and G12's first conv / G21's last / D1's first
        have 3 input or output channels (562,176 + 2,048 parameters for G12, + 2,048 for G21, D1 + 2,048);
        ``in_ch: 1`` / ``out_ch: 3`` builds the official counts.
      - ``use_distance_loss`` and ``use_self_distance`` together are refused: the code then trains the
        pairwise loss standardised by self-distance statistics (its ``get_expectation`` tests the
        self-distance flag first), which is no form of the paper's.
      - The fakes of the D step are made without a graph (the code backpropagates into G and throws
        the gradient away: the same update).
      - ``translate`` / evaluation run G in eval mode (BatchNorm running statistics); the code never
        calls ``.eval()`` (its samples use the batch's statistics), as DiscoGAN here.
      - Iterations are the suite's epochs over its data (the code draws a fresh iterator per domain
        every ``min(len) - 1`` batches and so never uses an incomplete batch; here an incomplete last
        batch of fewer than 2 images is skipped, a larger one used), and the statistics' B batches are
        those of the paired training batches (module docstring).
      - The MNIST -> SVHN ``Scale(32)`` preprocessing is the datamodule's (32x32 throughout).
    Departures from the paper: none known beyond the code's; the weights 0.05 / 0.1 are this model's
    code defaults (../shared/PAPERS.md gives the distance weight 1, the CycleGAN-architecture default).
    """

    method_name = "distancegan_digits"
    generators = {"AtoB": "netG_A", "BtoA": "netG_B"}
    stats_unit = "batches"
    distance_scale = 1.0

    def __init__(self, in_ch: int = 3, out_ch: int = 3, g_conv_dim: int = 64, d_conv_dim: int = 64,
                 use_reconst_loss: bool = False, use_distance_loss: bool = True, use_self_distance: bool = False,
                 unnormalized_distances: bool = False, lambda_distance_A: float = 0.05,
                 lambda_distance_B: float = 0.1, max_items: int = 400, lr: float = 2e-4, beta1: float = 0.5,
                 beta2: float = 0.999, ema_decay: float | None = None):
        super().__init__(lr_policy="constant", ema_decay=ema_decay)
        if use_distance_loss and use_self_distance:
            raise UserError("model.init_args: use_distance_loss and use_self_distance are exclusive (the code "
                            "would train the pairwise loss with self-distance statistics); set one")
        self.save_hyperparameters()
        self.netG_A = digit_generator(in_ch, out_ch, g_conv_dim)   # G12
        self.netG_B = digit_generator(out_ch, in_ch, g_conv_dim)   # G21
        self.netD_A = digit_discriminator(out_ch, d_conv_dim)      # D2: on domain B
        self.netD_B = digit_discriminator(in_ch, d_conv_dim)       # D1: on domain A
        self.gan = GANLoss("lsgan")
        self.init_distance()
        self.setup_ema()

    @property
    def uses_distance(self) -> bool:
        return bool(self.hparams.use_distance_loss or self.hparams.use_self_distance)

    def active(self, side: str) -> bool:
        return True  # both directions, always (the code has no one-sided switch here)

    build_optimizers = CycleGAN.build_optimizers  # Adam over G12 + G21 and over D1 + D2 (the same nets' names)

    def on_train_start(self) -> None:
        if self.uses_distance:
            super().on_train_start()

    def side_terms(self, real: torch.Tensor, side: str) -> dict[str, torch.Tensor]:
        """Step 3 (``side`` "A": a -> b -> a) or step 4 ("B")."""
        h = self.hparams
        G, G_back, D = (self.netG_A, self.netG_B, self.netD_A) if side == "A" else (self.netG_B, self.netG_A, self.netD_B)
        fake = G(real)
        terms = {f"G_{side}": self.gan(D(fake), True, for_discriminator=False)}
        if h.use_reconst_loss:
            terms[f"reconst_{side}"] = recon_loss(G_back(fake), real, "mse")
        else:
            with torch.no_grad():
                G_back(fake)  # the code's unused reconstruction: G_back's BatchNorm running statistics
        if self.uses_distance:
            weight = h.lambda_distance_A if side == "A" else h.lambda_distance_B
            terms[f"distance_{side}"] = self.distance_loss(real, fake, side) * weight
        return terms

    def training_step(self, batch, batch_idx):
        if not self.batch_usable(batch):
            return
        a, b = batch["A"], batch["B"]
        loss_D_real = self.gan(self.netD_B(a), True) + self.gan(self.netD_A(b), True)
        self.step("D", loss_D_real)
        with torch.no_grad():
            fake_b, fake_a = self.netG_A(a), self.netG_B(b)
        loss_D_fake = self.gan(self.netD_A(fake_b), False) + self.gan(self.netD_B(fake_a), False)
        self.step("D", loss_D_fake)
        logs = {"D_real": loss_D_real, "D_fake": loss_D_fake, "D": loss_D_real + loss_D_fake}
        for side, real in (("A", a), ("B", b)):
            terms = self.side_terms(real, side)
            loss = sum(terms.values())
            self.step("G", loss, zero_fill=True)
            logs.update(terms)
            logs[f"G_total_{side}"] = loss
        logs["G"] = logs["G_total_A"] + logs["G_total_B"]
        self.log_losses(logs)

    @torch.no_grad()
    def visuals(self, batch):
        v = {"real_A": batch["A"], "fake_B": self.translate(batch["A"], "AtoB")}
        v["rec_A"] = self.translate(v["fake_B"], "BtoA")
        v.update(real_B=batch["B"], fake_A=self.translate(batch["B"], "BtoA"))
        v["rec_B"] = self.translate(v["fake_A"], "AtoB")
        return v


__all__ = ["DistanceGAN", "DistanceDiscoGAN", "DistanceDigitGAN", "distance_statistics", "pair_distances", "self_distance"]
