"""OST: Benaim & Wolf, "One-Shot Unsupervised Cross Domain Translation", NeurIPS 2018.
Official code: sagiebenaim/OneShotTranslation, two codes with different loops:
``mnist_to_svhn/`` (``model.G11``, ``D1``/``D2``, ``solver_autoencoder.py``,
``solver_mnist_to_svhn.py``: the digit experiment) and ``drawing_and_style_transfer/``
(``models/autoencoder_model.py``, ``models/ost.py``: the image tasks).

Domain A is ONE image x (fresh augmentations every batch: ``datamodules.oneshot.OneShot``), domain B a
full set. Networks (``lit_i2i.nets.vae``): per-domain outer layers E_A^U / G_A^U and E_B^U / G_B^U,
SHARED inner layers E_S / G_S (one module object: ``enc_A.shared is enc_B.shared``), discriminator
D_B (and D_A with ``d_on_a``). E_X = E_S ∘ E_X^U gives the latent mean mu; z = mu + N(0, I) at train
time (``sample_z``); translation A->B is ``G_B(mu_A(x))``, no noise.

Phase I (the first ``phase1_steps`` iterations): a VAE-GAN on B alone. Phase II: E_A^U / G_A^U are
set to copies of E_B^U / G_B^U (once, at the boundary; the shared layers stay the same tensors), D_B
is freshly initialised and every optimizer starts afresh (``phase2_reset``, both official codes),
then:

| term | formula | weight (default) | side |
|---|---|---|---|
| recon_B | ‖G_B(z_B) − b‖ (``recon_kind``: mse) | lambda_recon = 1 (Phase I: lambda_recon_phase1, default = lambda_recon) | B |
| kl_B | mean(mu_B²) | lambda_kl = 0.1 | B (Phase I, II) |
| gan_BB | GAN(D_B(G_B(z_B)), real) | lambda_gan = 1 | B (Phase I; II with ``b_gan_phase2``) |
| recon_A | ‖G_A(z_A) − x‖ | lambda_recon = 1 | x (Phase II) |
| gan_AB | GAN(D_B(G_B(z_A)), real) | lambda_gan = 1 | x |
| cycle_A | ‖G_A(E_B(G_B(z_A)) + n) − x‖ (``cycle``: one_way, two_way) | lambda_cycle = 1 | x |
| cycle_B | ‖G_B(E_A(G_A(z_B)) + n) − b‖ (``cycle: two_way`` only) | lambda_cycle | x (A's layers) |
| gan_BA | GAN(D_A(G_A(z_B)), real) (``d_on_a`` only) | lambda_gan | x |
| D (mnist) | GAN(D_B(b), real) [+ GAN(D_A(x), real)] ; then GAN(D_B(fakes), fake) [+ GAN(D_A(G_A(z_B)), fake)] | 1 | two steps |
| D (image) | Σ over fakes f: ½ [GAN(D_B(b), real) + GAN(D_B(pool(f)), fake)] [+ ½ D_A terms] | 1 | one step |

GAN = LSGAN. D_B's fakes: G_B(z_B) in Phase I; in Phase II the x->B translation and, with
``b_gan_phase2``, G_B(z_B). ``pool_size`` (0 = off) is one history pool for all of D_B's fakes.

**Which official loop** (``official_code``; ``auto``: ``mnist`` for the ``dcgan`` layout, ``image``
for ``resnet``):
  - ``mnist``: per iteration D real step, D fake step (two updates of one Adam, fakes from a no-grad
    forward), then the G update(s); PyTorch's default initialisation (``init_type: auto`` -> none;
    the MNIST code initialises nothing).
  - ``image``: per iteration the G update(s), then one D step on the fakes of the G forward (the
    CycleGAN order), D loss ½(real + fake) per fake; Gaussian init N(0, 0.02) (``auto`` -> normal).

**Selective backpropagation** (``selective_backprop``, on by default): in Phase II the x losses
update only E_A^U / G_A^U; the shared and B layers get the B losses only. Done with one optimizer:
the x losses are backpropagated first, the shared and B gradients dropped, then the B losses are
backpropagated (Adam is per parameter, so this equals the image code's separate A and B optimizers).
Off: the x losses also update the shared and B layers.

Ablation switches (Table 1 of the paper): augmentation = the datamodule's ``augment``; one-way vs
two-way cycle vs none = ``cycle``; ``selective_backprop``; ``freeze_shared`` (the row "no Phase II
update of E_S, G_S"): as the MNIST code's flag, Phase II skips the B update entirely (no B loss is
backpropagated; B's outer layers move only with ``x_updates_b_outer``).

Lengths are in iterations (batches): ``phase1_steps``, and ``phase2_steps`` (None: until the trainer's
own limit; 0: stop at the end of Phase I, a Phase I-only run). Counters are Python ints
(``TranslationModule.iteration``, the Phase II start) saved in the checkpoint. Two runs instead of
one: a Phase I run (``phase2_steps: 0``) then Phase II runs with ``init_from: PHASE1.ckpt`` (loaded
at fit start unless the run resumes; training starts in Phase II; with ``phase2_reset`` D is not
loaded). Both resume exactly. ``trainer.global_step`` counts optimizer steps, which differ by mode
(mnist: 3 per iteration, 4 with ``x_updates_b_outer``; image: 2): set lengths with the two options.

Official-code behaviours, off by default (the paper's behaviour), each behind a flag:
  (a) ``x_updates_b_outer``: the MNIST code's x losses also update B's outer layers, through a second
      Adam (its ``unshared_optimizer``: both domains' first conv and last deconv) stepped before the
      B update; only the shared layers are protected. The image code and the paper update only A's.
  (b) The MNIST code never re-augments x (one fixed tensor; its augmentation is a flip and a +-0.1
      degree rotation, i.e. none): ``--data.init_args.augment false``.
  (c) ``d_on_a``: the MNIST code also trains D_A with the single x as the real sample and B->A
      translations as fakes, and gives G the matching GAN term (an x loss).
  (d) Phase II length: the MNIST code's ``train_iters`` is 40,000 but it returns after 5,000
      iterations (``num_iters_save_model_and_return``): ``phase2_steps``.
  (e) ``b_gan_phase2: false``: the MNIST code's Phase II B loss is reconstruction + KL only (no GAN);
      the paper (and the image code) keep the B GAN term.
  (f) ``sample_z: false``: both official codes use the mean (no noise) with the mean(mu^2) term; the
      paper's VAE samples z = mu + N(0, I).

Translation (``translate``, grids, metrics) runs BatchNorm as ``bn_eval`` says, default ``sample``:
each image normalised by its own statistics, the function of the official code, which never calls
``.eval()`` and samples its translations with batch 1 (running averages, ``running``, mix the
statistics of x's augmentations and of B batches; ``batch``: the statistics of the translated batch).
Layouts without BatchNorm are unaffected.

Other choices and departures:
  - Defaults follow the MNIST code (the digit experiment): the ``dcgan`` G11 net (BatchNorm, LeakyReLU
    0.05, latent 128x8x8 at 32x32, every conv bias-free), D1/D2 (bias-free), LSGAN, MSE
    reconstruction and cycle with weight 1, KL 0.1, Adam(2e-4, 0.5, 0.999). The image code
    (``experiments/ost/summer2winter.yaml``) uses the ``resnet`` layout, L1, cycle weight 10, Phase I
    reconstruction weight 10, a PatchGAN and a pool of 50.
  - One batch size for both phases (the MNIST code: 64 in Phase I, 1 in Phase II); the A half of a
    batch is that many fresh augmentations of x.
  - Phase I trains B only (the MNIST code's autoencoder script also trains an autoencoder per domain).
  - Cloning copies every tensor whose shape matches (all of them when A and B have the same channel
    count; else A's input and output convs keep their initialisation). Both official codes start
    E_A^U / G_A^U untrained (the MNIST code's 1-channel MNIST layers are never trained in Phase I;
    the image code creates them afresh); the paper clones.
  - Two-way cycle under selective backprop updates only A's layers (it goes through them).
  - In the ``mnist`` loop with ``x_updates_b_outer`` the B losses are computed after the x update
    (a fresh forward, as the MNIST code); otherwise from the same forward as the x losses.
  - No EMA option (``translate`` chains two modules).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lit_i2i.core.losses import GANLoss, recon_loss
from lit_i2i.core.module import TranslationModule
from lit_i2i.core.pool import ImagePool
from lit_i2i.errors import UserError
from lit_i2i.methods.unit import SharedLatentTranslation, kl_loss
from lit_i2i.nets.blocks import BN_STATISTICS, batchnorm_statistics
from lit_i2i.nets.init import init_weights, reinit
from lit_i2i.nets.registry import define_D
from lit_i2i.nets.vae import DCGANDiscriminator, VAESpec, copy_matching, shared_latent_vaes, unique_parameters

CYCLES = ("one_way", "two_way", "none")
CODES = ("auto", "mnist", "image")


class OST(SharedLatentTranslation, TranslationModule):
    method_name = "ost"
    directions = ("AtoB", "BtoA")

    def __init__(self, a_ch: int = 3, b_ch: int = 3, arch: str = "dcgan", ngf: int = 64, n_down: int = 2,
                 n_unshared: int = 1, n_res_unshared: int = 0, n_res_shared: int = 1, norm: str = "batch",
                 dropout: float = 0.0, netD: str = "dcgan", ndf: int = 64, n_layers_D: int = 3, norm_D: str = "batch",
                 gan_mode: str = "lsgan", lambda_gan: float = 1.0, lambda_recon: float = 1.0,
                 lambda_recon_phase1: float | None = None, lambda_kl: float = 0.1,
                 lambda_cycle: float = 1.0, recon_kind: str = "mse", sample_z: bool = True,
                 phase1_steps: int = 0, phase2_steps: int | None = None, init_from: str | None = None,
                 official_code: str = "auto", phase2_reset: bool = True, cycle: str = "one_way",
                 selective_backprop: bool = True, freeze_shared: bool = False, x_updates_b_outer: bool = False,
                 d_on_a: bool = False, b_gan_phase2: bool = True, pool_size: int = 0, bn_eval: str = "sample",
                 lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999, init_type: str = "auto",
                 init_gain: float = 0.02, lr_policy: str = "constant", lr_interval: str = "step",
                 n_epochs: int = 100, n_epochs_decay: int = 100):
        super().__init__(lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay, lr_interval=lr_interval)
        self.save_hyperparameters()
        if cycle not in CYCLES:
            raise ValueError(f"cycle must be one of {', '.join(CYCLES)}, got {cycle!r}")
        if recon_kind not in ("l1", "l2", "mse"):
            raise ValueError(f"recon_kind must be l1 or mse, got {recon_kind!r}")
        if official_code not in CODES:
            raise ValueError(f"official_code must be one of {', '.join(CODES)}, got {official_code!r}")
        if bn_eval not in BN_STATISTICS:
            raise ValueError(f"bn_eval must be one of {', '.join(BN_STATISTICS)}, got {bn_eval!r}")
        if phase2_steps is not None and phase2_steps < 0:
            raise ValueError(f"phase2_steps must be >= 0 or null, got {phase2_steps}")
        self.code = official_code if official_code != "auto" else ("mnist" if arch == "dcgan" else "image")
        self.init_type = init_type if init_type != "auto" else ("none" if self.code == "mnist" else "normal")
        spec = VAESpec(arch, ngf, n_down, n_unshared, n_res_unshared, n_res_shared, norm, dropout)
        self.enc_A, self.dec_A, self.enc_B, self.dec_B = shared_latent_vaes(spec, a_ch, b_ch, share=True)
        for m in (self.enc_A, self.dec_A, self.enc_B, self.dec_B):
            init_weights(m, self.init_type, init_gain)
        self.dis_B = self._build_D(netD, b_ch, ndf, n_layers_D, norm_D)
        self.dis_A = self._build_D(netD, a_ch, ndf, n_layers_D, norm_D) if d_on_a else None
        self.gan = GANLoss(gan_mode)
        self.pools = {"fake_B": ImagePool(pool_size), "fake_A": ImagePool(pool_size)}
        self.phase2_start: int | None = None  # the iteration Phase II began at (checkpointed)

    def _build_D(self, name, ch, ndf, n_layers, norm):
        if name == "dcgan":
            return init_weights(DCGANDiscriminator(ch, ndf, n_layers, norm), self.init_type, self.hparams.init_gain)
        return define_D(name, ch, ndf=ndf, n_layers=n_layers, norm=norm, init_type=self.init_type,
                        init_gain=self.hparams.init_gain)

    def discriminators(self) -> list[torch.nn.Module]:
        return [self.dis_B] + ([self.dis_A] if self.dis_A is not None else [])

    def build_optimizers(self):
        h = self.hparams
        kw = dict(lr=h.lr, betas=(h.beta1, h.beta2))
        opts = {"D": torch.optim.Adam(unique_parameters(*self.discriminators()), **kw),
                "G": torch.optim.Adam(unique_parameters(self.enc_A, self.dec_A, self.enc_B, self.dec_B), **kw)}
        if self.two_g_optimizers:
            opts["G_x"] = torch.optim.Adam(self.a_outer_parameters() + self.b_outer_parameters(), **kw)
        return opts

    @property
    def two_g_optimizers(self) -> bool:
        """The MNIST code's ``unshared_optimizer``: x losses update both domains' outer layers."""
        return self.hparams.x_updates_b_outer and self.hparams.selective_backprop

    # ------------------------------------------------------------------ parameter groups
    def shared_parameters(self) -> list[torch.nn.Parameter]:
        return unique_parameters(self.enc_B.shared, self.dec_B.shared)

    def b_outer_parameters(self) -> list[torch.nn.Parameter]:
        return unique_parameters(self.enc_B.front, self.dec_B.back)

    def a_outer_parameters(self) -> list[torch.nn.Parameter]:
        return unique_parameters(self.enc_A.front, self.dec_A.back)

    def protected_parameters(self) -> list[torch.nn.Parameter]:
        """What the x losses must not update in the one-optimizer G step: the shared and B layers
        (selective backprop), the shared ones (``freeze_shared`` without it), else nothing."""
        if self.hparams.selective_backprop:
            return self.shared_parameters() + self.b_outer_parameters()
        return self.shared_parameters() if self.hparams.freeze_shared else []

    # ------------------------------------------------------------------ phases
    @property
    def phase(self) -> int:
        return 2 if self.phase2_start is not None or self.iteration >= self.hparams.phase1_steps else 1

    def start_phase2(self, d_is_fresh: bool = False) -> None:
        """E_A^U <- E_B^U, G_A^U <- G_B^U (copied in place; the shared layers are untouched); with
        ``phase2_reset`` also a freshly initialised D and fresh optimizer states."""
        copy_matching(self.enc_B.front, self.enc_A.front)
        copy_matching(self.dec_B.back, self.dec_A.back)
        self.phase2_start = self.iteration
        if self.hparams.phase2_reset:
            if not d_is_fresh:
                for d in self.discriminators():
                    reinit(d, self.init_type, self.hparams.init_gain)
            if self._trainer is not None:
                opts = self.optimizers()
                for opt in opts if isinstance(opts, list) else [opts]:
                    opt.optimizer.state.clear()

    def on_fit_start(self) -> None:
        # after a resume's restore: a resumed Phase II run has phase2_start set and skips this
        if self.hparams.init_from and self.phase2_start is None:
            self.load_phase1(self.hparams.init_from)

    def load_phase1(self, path: str) -> None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"model.init_from: checkpoint not found: {p}")
        try:
            ckpt = torch.load(p, map_location=self.device, weights_only=True)
            state = ckpt["state_dict"]
        except Exception as e:  # noqa: BLE001 - any unreadable file is a user error
            raise UserError(f"model.init_from: not a readable Lightning checkpoint: {p} ({type(e).__name__})") from e
        if ckpt.get("ost_phase2_start") is not None:
            raise UserError(f"model.init_from: {p} is already in Phase II; give a Phase I checkpoint")
        own = set(self.state_dict())
        missing = {k for k in own - set(state) if not k.startswith("dis_A.")}  # D_A is not trained in Phase I
        if missing or set(state) - own:
            raise UserError(f"model.init_from: {p} does not match this OST architecture "
                            f"(missing {sorted(missing)[:3]}, unexpected {sorted(set(state) - own)[:3]})")
        if self.hparams.phase2_reset:  # both official codes start Phase II with a fresh D
            state = {k: v for k, v in state.items() if not k.startswith("dis_")}
        try:
            self.load_state_dict(state, strict=False)
        except RuntimeError as e:
            raise UserError(f"model.init_from: {p} does not match this OST architecture: {e}") from e
        self.start_phase2(d_is_fresh=True)  # this run's D is already fresh, its optimizers new

    def phase2_done(self) -> bool:
        n = self.hparams.phase2_steps
        if n is None:
            return False
        start = self.phase2_start if self.phase2_start is not None else self.hparams.phase1_steps
        return self.iteration >= start + n

    def on_train_batch_start(self, batch, batch_idx):
        if self.phase2_done():  # e.g. resumed from the last checkpoint of a finished run
            self.trainer.should_stop = True
            return -1
        return None

    def end_of_batch(self) -> None:
        super().end_of_batch()
        if self.phase2_done() and self._trainer is not None:
            self.trainer.should_stop = True

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["ost_phase2_start"] = self.phase2_start

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.phase2_start = checkpoint.get("ost_phase2_start")

    # ------------------------------------------------------------------ forward and losses
    def sample(self, mu: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) if self.training and self.hparams.sample_z else mu

    def rec(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return recon_loss(x, y, self.hparams.recon_kind)

    def b_losses(self, b: torch.Tensor, gan: bool = True, recon_w: float | None = None):
        """(losses, z_B, G_B(z_B)) of the B autoencoder."""
        h = self.hparams
        mu_b = self.enc_B(b)
        z_b = self.sample(mu_b)
        rec_b = self.dec_B(z_b)
        w = h.lambda_recon if recon_w is None else recon_w
        out = {"recon_B": w * self.rec(rec_b, b), "kl_B": h.lambda_kl * kl_loss(mu_b)}
        if gan:
            out["gan_BB"] = h.lambda_gan * self.gan(self.dis_B(rec_b), True, for_discriminator=False)
        return out, z_b, rec_b

    def x_losses(self, x: torch.Tensor, b: torch.Tensor, z_b: torch.Tensor | None = None):
        """(losses, x->B translation, B->A translation or None) of the one sample's terms."""
        h = self.hparams
        z_a = self.sample(self.enc_A(x))
        fake_b = self.dec_B(z_a)
        out = {"recon_A": h.lambda_recon * self.rec(self.dec_A(z_a), x),
               "gan_AB": h.lambda_gan * self.gan(self.dis_B(fake_b), True, for_discriminator=False)}
        if h.cycle != "none":
            out["cycle_A"] = h.lambda_cycle * self.rec(self.dec_A(self.sample(self.enc_B(fake_b))), x)
        fake_a = None
        if h.cycle == "two_way" or self.dis_A is not None:
            z_b = self.sample(self.enc_B(b)) if z_b is None else z_b
            fake_a = self.dec_A(z_b)
            if h.cycle == "two_way":
                out["cycle_B"] = h.lambda_cycle * self.rec(self.dec_B(self.sample(self.enc_A(fake_a))), b)
            if self.dis_A is not None:
                out["gan_BA"] = h.lambda_gan * self.gan(self.dis_A(fake_a), True, for_discriminator=False)
        return out, fake_b, fake_a

    def d_pair(self, net, real: torch.Tensor, fake: torch.Tensor, pool: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(real term, fake term) of one discriminator; the fake through the named history pool."""
        return self.gan(net(real), True), self.gan(net(self.pools[pool].query(fake.detach())), False)

    # ------------------------------------------------------------------ steps
    def x_backward(self, loss: torch.Tensor, retain_graph: bool = True) -> None:
        """Backward of the x losses, then selective backprop: drop the protected parameters' gradients."""
        self.manual_backward(loss, retain_graph=retain_graph)
        for p in self.protected_parameters():
            p.grad = None

    def phase2_generator_step(self, x: torch.Tensor, b: torch.Tensor):
        """The Phase II G update(s); returns (losses, x->B, G_B(z_B) or None, B->A or None)."""
        h = self.hparams
        if self.two_g_optimizers:  # the MNIST code: unshared_optimizer on the x losses, then g_optimizer on B's
            gx, fake_b, fake_a = self.x_losses(x, b)
            self.step("G_x", sum(gx.values()))
            gb, rec_b = {}, None
            if not h.freeze_shared:
                gb, _, rec_b = self.b_losses(b, gan=h.b_gan_phase2)
                self.step("G", sum(gb.values()))
            return {**gb, **gx}, fake_b, rec_b, fake_a
        gb, z_b, rec_b = self.b_losses(b, gan=h.b_gan_phase2)
        gx, fake_b, fake_a = self.x_losses(x, b, z_b)
        loss_x, loss_b = sum(gx.values()), sum(gb.values())
        opt = self.optimizer("G")
        self.toggle_optimizer(opt)
        opt.zero_grad(set_to_none=True)
        self.x_backward(loss_x, retain_graph=not h.freeze_shared)
        if not h.freeze_shared:  # freeze_shared: no B update at all (the MNIST code skips its B step)
            self.manual_backward(loss_b)
        opt.step()
        opt.zero_grad(set_to_none=True)
        self.untoggle_optimizer(opt)
        return {**gb, **gx}, fake_b, rec_b, fake_a

    def training_step(self, batch, batch_idx):
        if self.phase == 2 and self.phase2_start is None:
            self.start_phase2()
        if self.phase == 1:
            self.phase1_step(batch["B"])
        else:
            self.phase2_step(batch["A"], batch["B"])

    def phase1_step(self, b: torch.Tensor) -> None:
        w = self.hparams.lambda_recon_phase1
        if self.code == "mnist":  # D real step, D fake step, G step
            with torch.no_grad():
                fake = self.dec_B(self.sample(self.enc_B(b)))
            real_t = self.gan(self.dis_B(b), True)
            self.step("D", real_t)
            fake_t = self.gan(self.dis_B(self.pools["fake_B"].query(fake)), False)  # D after its real update
            self.step("D", fake_t)
            loss_D = real_t.detach() + fake_t.detach()
            g, _, _ = self.b_losses(b, recon_w=w)
            loss_G = sum(g.values())
            self.step("G", loss_G)
        else:  # G step, then D on the pooled reconstruction of that forward
            g, _, rec_b = self.b_losses(b, recon_w=w)
            loss_G = sum(g.values())
            self.step("G", loss_G)
            loss_D = 0.5 * sum(self.d_pair(self.dis_B, b, rec_b, "fake_B"))
            self.step("D", loss_D)
        self.log_losses({"G": loss_G, "D": loss_D, **g})
        if self.logging_step():
            self.log("train/phase", 1.0, on_step=True, on_epoch=False)

    def phase2_step(self, x: torch.Tensor, b: torch.Tensor) -> None:
        h = self.hparams
        if self.code == "mnist":
            with torch.no_grad():
                z_b = self.sample(self.enc_B(b))
                fakes_b = [self.dec_B(self.sample(self.enc_A(x)))] + ([self.dec_B(z_b)] if h.b_gan_phase2 else [])
                fake_a = self.dec_A(z_b) if self.dis_A is not None else None
            real_t = self.gan(self.dis_B(b), True)
            if fake_a is not None:
                real_t = real_t + self.gan(self.dis_A(x), True)
            self.step("D", real_t)
            fake_t = sum(self.gan(self.dis_B(self.pools["fake_B"].query(f)), False) for f in fakes_b)
            if fake_a is not None:
                fake_t = fake_t + self.gan(self.dis_A(self.pools["fake_A"].query(fake_a)), False)
            self.step("D", fake_t)
            loss_D = real_t.detach() + fake_t.detach()
            g, *_ = self.phase2_generator_step(x, b)
        else:
            g, fake_b, rec_b, fake_a = self.phase2_generator_step(x, b)
            if rec_b is None and h.b_gan_phase2:
                with torch.no_grad():
                    rec_b = self.dec_B(self.sample(self.enc_B(b)))
            fakes = [fake_b] + ([rec_b] if h.b_gan_phase2 else [])
            loss_D = sum(0.5 * sum(self.d_pair(self.dis_B, b, f, "fake_B")) for f in fakes)
            if self.dis_A is not None:
                loss_D = loss_D + 0.5 * sum(self.d_pair(self.dis_A, x, fake_a, "fake_A"))
            self.step("D", loss_D)
        loss_x = sum(v for k, v in g.items() if k not in ("recon_B", "kl_B", "gan_BB"))
        self.log_losses({"G": sum(g.values()), "D": loss_D, "G_x": loss_x, **g})
        if self.logging_step():
            self.log("train/phase", 2.0, on_step=True, on_epoch=False)

    # ------------------------------------------------------------------ the one door
    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None) -> torch.Tensor:
        with batchnorm_statistics(self, self.hparams.bn_eval):
            return super().translate(x, direction, reference)

    @torch.no_grad()
    def visuals(self, batch):
        a, b = batch["A"], batch["B"]
        with batchnorm_statistics(self, self.hparams.bn_eval):
            mu_a, mu_b = self.enc_A(a), self.enc_B(b)
            fake_b = self.dec_B(mu_a)
            return {"real_A": a, "rec_A": self.dec_A(mu_a), "fake_B": fake_b,
                    "cyc_A": self.dec_A(self.enc_B(fake_b)), "real_B": b, "rec_B": self.dec_B(mu_b),
                    "fake_A": self.dec_A(mu_b)}
