"""OST: Benaim & Wolf, "One-Shot Unsupervised Cross Domain Translation", NeurIPS 2018.
Official code: sagiebenaim/OneShotTranslation (``mnist_to_svhn/``: ``model.G11``, ``D1``/``D2``,
``solver_autoencoder.py``, ``solver_mnist_to_svhn.py``; ``drawing_and_style_transfer/models/ost.py``).

Domain A is ONE image x (fresh augmentations every batch: ``datamodules.oneshot.OneShot``), domain B a
full set. Networks (``lit_i2i.nets.vae``): per-domain outer layers E_A^U / G_A^U and E_B^U / G_B^U,
SHARED inner layers E_S / G_S (one module object: ``enc_A.shared is enc_B.shared``), discriminator
D_B (and D_A with ``d_on_a``). E_X = E_S ∘ E_X^U gives the latent mean mu; z = mu + N(0, I) at train
time (``sample_z``); translation A->B is ``G_B(mu_A(x))``, no noise.

Phase I (iterations < ``phase1_steps``): a VAE-GAN on B alone. Phase II: E_A^U / G_A^U are set to
copies of E_B^U / G_B^U (once, at the boundary; the shared layers stay the same tensors), then:

| term | formula | weight (default) | side |
|---|---|---|---|
| recon_B | ‖G_B(z_B) − b‖ (``recon_kind``: mse) | lambda_recon = 1 | B (Phase I, II) |
| kl_B | mean(mu_B²) | lambda_kl = 0.1 | B (Phase I, II) |
| gan_BB | GAN(D_B(G_B(z_B)), real) | lambda_gan = 1 | B (Phase I; II with ``b_gan_phase2``) |
| recon_A | ‖G_A(z_A) − x‖ | lambda_recon = 1 | x (Phase II) |
| gan_AB | GAN(D_B(G_B(z_A)), real) | lambda_gan = 1 | x |
| cycle_A | ‖G_A(E_B(G_B(z_A)) + n) − x‖ (``cycle``: one_way, two_way) | lambda_cycle = 1 | x |
| cycle_B | ‖G_B(E_A(G_A(z_B)) + n) − b‖ (``cycle: two_way`` only) | lambda_cycle | x (A's layers) |
| gan_BA | GAN(D_A(G_A(z_B)), real) (``d_on_a`` only) | lambda_gan | x |
| loss_D | GAN(D_B(b), real) + GAN(D_B(fakes), fake) [+ D_A: GAN(D_A(x), real) + GAN(D_A(G_A(z_B)), fake)] | 1 |

D_B's fakes: G_B(z_B) in Phase I; x->B translations (through a ``pool_size`` history pool, 0 = off)
and, with ``b_gan_phase2``, G_B(z_B) in Phase II. GAN = LSGAN. Per iteration: D step, then G step
(one optimizer each, so every iteration is 2 optimizer steps: ``trainer.max_steps`` = 2 x iterations).

**Selective backpropagation** (``selective_backprop``, on by default): the Phase II G step does two
backward passes into one optimizer, as the image code: the x losses first; then the gradients of
every shared and B parameter are dropped (set to None, so these losses update only E_A^U / G_A^U);
then the B losses. Off: the x losses also update the shared and B layers. ``freeze_shared`` (the
ablation row "no Phase II update of E_S, G_S") drops the shared gradients after both passes.

Ablation switches (Table 1 of the paper): augmentation = the datamodule's ``augment``; one-way vs
two-way cycle vs none = ``cycle``; ``selective_backprop``; ``freeze_shared``.

Running the two phases: one run with ``phase1_steps`` (the boundary is an iteration count held in a
checkpointed buffer), or a Phase I run (``phase1_steps`` >= its length) followed by Phase II runs with
``init_from: PHASE1.ckpt`` (loaded at fit start unless the run resumes; ``phase1_steps`` is then
ignored and training starts in Phase II, with fresh optimizers). Both resume exactly (buffers,
optimizers, pools and RNG are in the checkpoint).

Official-code behaviours, off by default (the paper's behaviour), each behind a flag:
  (a) ``x_updates_b_outer``: the MNIST code's x losses update B's outer layers too (its
      ``unshared_optimizer`` holds both domains' first conv and last deconv); only the shared layers
      are protected. The image code and the paper update only A's layers.
  (b) The MNIST code never re-augments x (one fixed pre-augmented tensor; its augmentation is a
      +-0.1 degree rotation, i.e. none): ``--data.init_args.augment false``.
  (c) ``d_on_a``: the MNIST code also trains D_A with the single x as the real sample and B->A
      translations as fakes, and gives G the matching GAN term (an x loss).
  (d) Phase II length: the MNIST code's ``train_iters`` is 40,000 but it returns after 5,000
      iterations (``num_iters_save_model_and_return``); set it with ``trainer.max_steps``
      (configs: ``experiments/ost/mnist2svhn.yaml``).
  (e) ``b_gan_phase2: false``: the MNIST code's Phase II B loss is reconstruction + KL only (no GAN);
      the paper says the B losses (reconstruction, KL, GAN) continue.
  (f) ``sample_z: false``: both official codes use the mean (no noise) with the mean(mu^2) term; the
      paper's VAE samples z = mu + N(0, I).

Other choices and departures:
  - Defaults follow the MNIST code (the digit experiment): the ``dcgan`` G11 net (BatchNorm, LeakyReLU
    0.05, latent 128x8x8 at 32x32), D1/D2, LSGAN, MSE reconstruction and cycle with weight 1, KL 0.1,
    Adam(2e-4, 0.5, 0.999). The image code (``experiments/ost/summer2winter.yaml``) uses the ``resnet``
    layout, L1, cycle weight 10, a PatchGAN and a pool of 50.
  - One batch size for both phases (the MNIST code: 64 in Phase I, 1 in Phase II); the A half of a
    batch is that many fresh augmentations of x.
  - D then G in both phases (the MNIST code; the image code steps G first). D's real and fake terms
    are summed in one step (the MNIST code takes separate real and fake steps).
  - Phase I trains B only (the MNIST code's autoencoder script also trains an autoencoder per domain).
  - Cloning copies every tensor whose shape matches (all of them when A and B have the same channel
    count; else A's input and output convs keep their initialisation).
  - The image code initialises E_A^U / G_A^U afresh instead of cloning B's; the paper clones.
  - Two-way cycle under selective backprop updates only A's layers (it goes through them).
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
from lit_i2i.nets.init import init_weights
from lit_i2i.nets.registry import define_D
from lit_i2i.nets.vae import DCGANDiscriminator, VAESpec, copy_matching, shared_latent_vaes, unique_parameters

CYCLES = ("one_way", "two_way", "none")
BOOKKEEPING = ("iteration", "phase2_started")


class OST(SharedLatentTranslation, TranslationModule):
    method_name = "ost"
    directions = ("AtoB", "BtoA")

    def __init__(self, a_ch: int = 3, b_ch: int = 3, arch: str = "dcgan", ngf: int = 64, n_down: int = 2,
                 n_unshared: int = 1, n_res_unshared: int = 0, n_res_shared: int = 1, norm: str = "batch",
                 dropout: float = 0.0, netD: str = "dcgan", ndf: int = 64, n_layers_D: int = 3, norm_D: str = "batch",
                 gan_mode: str = "lsgan", lambda_gan: float = 1.0, lambda_recon: float = 1.0, lambda_kl: float = 0.1,
                 lambda_cycle: float = 1.0, recon_kind: str = "mse", sample_z: bool = True,
                 phase1_steps: int = 0, init_from: str | None = None, cycle: str = "one_way",
                 selective_backprop: bool = True, freeze_shared: bool = False, x_updates_b_outer: bool = False,
                 d_on_a: bool = False, b_gan_phase2: bool = True, pool_size: int = 0,
                 lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999, init_type: str = "normal",
                 init_gain: float = 0.02, lr_policy: str = "constant", lr_interval: str = "step",
                 n_epochs: int = 100, n_epochs_decay: int = 100):
        super().__init__(lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay, lr_interval=lr_interval)
        self.save_hyperparameters()
        if cycle not in CYCLES:
            raise ValueError(f"cycle must be one of {', '.join(CYCLES)}, got {cycle!r}")
        if recon_kind not in ("l1", "l2", "mse"):
            raise ValueError(f"recon_kind must be l1 or mse, got {recon_kind!r}")
        spec = VAESpec(arch, ngf, n_down, n_unshared, n_res_unshared, n_res_shared, norm, dropout)
        self.enc_A, self.dec_A, self.enc_B, self.dec_B = shared_latent_vaes(spec, a_ch, b_ch, share=True)
        for m in (self.enc_A, self.dec_A, self.enc_B, self.dec_B):
            init_weights(m, init_type, init_gain)
        self.dis_B = self._build_D(netD, b_ch, ndf, n_layers_D, norm_D, init_type, init_gain)
        self.dis_A = self._build_D(netD, a_ch, ndf, n_layers_D, norm_D, init_type, init_gain) if d_on_a else None
        self.gan = GANLoss(gan_mode)
        self.pools = {"fake_B": ImagePool(pool_size)}
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self.register_buffer("phase2_started", torch.zeros((), dtype=torch.bool))

    @staticmethod
    def _build_D(name, ch, ndf, n_layers, norm, init_type, init_gain):
        if name == "dcgan":
            return init_weights(DCGANDiscriminator(ch, ndf, n_layers, norm), init_type, init_gain)
        return define_D(name, ch, ndf=ndf, n_layers=n_layers, norm=norm, init_type=init_type, init_gain=init_gain)

    def build_optimizers(self):
        h = self.hparams
        kw = dict(lr=h.lr, betas=(h.beta1, h.beta2))
        dis = [self.dis_B] + ([self.dis_A] if self.dis_A is not None else [])
        return {"D": torch.optim.Adam(unique_parameters(*dis), **kw),
                "G": torch.optim.Adam(unique_parameters(self.enc_A, self.dec_A, self.enc_B, self.dec_B), **kw)}

    # ------------------------------------------------------------------ parameter groups
    def shared_parameters(self) -> list[torch.nn.Parameter]:
        return unique_parameters(self.enc_B.shared, self.dec_B.shared)

    def b_outer_parameters(self) -> list[torch.nn.Parameter]:
        return unique_parameters(self.enc_B.front, self.dec_B.back)

    def a_outer_parameters(self) -> list[torch.nn.Parameter]:
        return unique_parameters(self.enc_A.front, self.dec_A.back)

    def protected_parameters(self) -> list[torch.nn.Parameter]:
        """What the x losses must not update: shared and B layers (only shared with ``x_updates_b_outer``)."""
        if not self.hparams.selective_backprop:
            return []
        return self.shared_parameters() + ([] if self.hparams.x_updates_b_outer else self.b_outer_parameters())

    # ------------------------------------------------------------------ phases
    @property
    def phase(self) -> int:
        return 2 if bool(self.phase2_started) or int(self.iteration) >= self.hparams.phase1_steps else 1

    def start_phase2(self) -> None:
        """E_A^U <- E_B^U, G_A^U <- G_B^U (copied in place; the shared layers are untouched)."""
        copy_matching(self.enc_B.front, self.enc_A.front)
        copy_matching(self.dec_B.back, self.dec_A.back)
        self.phase2_started.fill_(True)

    def on_fit_start(self) -> None:
        # after a resume's restore: a resumed Phase II run has phase2_started set and skips this
        init_from = self.hparams.init_from
        if init_from and not bool(self.phase2_started):
            self.load_phase1(init_from)

    def load_phase1(self, path: str) -> None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"model.init_from: checkpoint not found: {p}")
        try:
            state = torch.load(p, map_location=self.device, weights_only=True)["state_dict"]
        except Exception as e:  # noqa: BLE001 - any unreadable file is a user error
            raise UserError(f"model.init_from: not a readable Lightning checkpoint: {p} ({type(e).__name__})") from e
        if bool(state.get("phase2_started", False)):
            raise UserError(f"model.init_from: {p} is already in Phase II; give a Phase I checkpoint")
        state = {k: v for k, v in state.items() if k not in BOOKKEEPING}
        own = {k for k in self.state_dict() if k not in BOOKKEEPING}
        missing = own - set(state)
        missing = {k for k in missing if not k.startswith("dis_A.")}  # D_A (d_on_a) is not trained in Phase I
        if missing or set(state) - own:
            raise UserError(f"model.init_from: {p} does not match this OST architecture "
                            f"(missing {sorted(missing)[:3]}, unexpected {sorted(set(state) - own)[:3]})")
        try:
            self.load_state_dict(state, strict=False)
        except RuntimeError as e:
            raise UserError(f"model.init_from: {p} does not match this OST architecture: {e}") from e
        self.start_phase2()

    # ------------------------------------------------------------------ forward and losses
    def sample(self, mu: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) if self.training and self.hparams.sample_z else mu

    def rec(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return recon_loss(x, y, self.hparams.recon_kind)

    def b_losses(self, b: torch.Tensor, gan: bool = True) -> tuple[dict, torch.Tensor]:
        h = self.hparams
        mu_b = self.enc_B(b)
        z_b = self.sample(mu_b)
        rec_b = self.dec_B(z_b)
        out = {"recon_B": h.lambda_recon * self.rec(rec_b, b), "kl_B": h.lambda_kl * kl_loss(mu_b)}
        if gan:
            out["gan_BB"] = h.lambda_gan * self.gan(self.dis_B(rec_b), True, for_discriminator=False)
        return out, z_b

    def x_losses(self, x: torch.Tensor, b: torch.Tensor, z_b: torch.Tensor) -> dict:
        h = self.hparams
        z_a = self.sample(self.enc_A(x))
        fake_b = self.dec_B(z_a)
        out = {"recon_A": h.lambda_recon * self.rec(self.dec_A(z_a), x),
               "gan_AB": h.lambda_gan * self.gan(self.dis_B(fake_b), True, for_discriminator=False)}
        if h.cycle != "none":
            out["cycle_A"] = h.lambda_cycle * self.rec(self.dec_A(self.sample(self.enc_B(fake_b))), x)
        if h.cycle == "two_way" or self.dis_A is not None:
            fake_a = self.dec_A(z_b)
            if h.cycle == "two_way":
                out["cycle_B"] = h.lambda_cycle * self.rec(self.dec_B(self.sample(self.enc_A(fake_a))), b)
            if self.dis_A is not None:
                out["gan_BA"] = h.lambda_gan * self.gan(self.dis_A(fake_a), True, for_discriminator=False)
        return out

    # ------------------------------------------------------------------ steps
    def x_backward(self, loss: torch.Tensor) -> None:
        """Backward of the x losses, then selective backprop: drop the protected parameters' gradients."""
        self.manual_backward(loss, retain_graph=True)
        for p in self.protected_parameters():
            p.grad = None

    def generator_step(self, loss_x: torch.Tensor | None, loss_b: torch.Tensor) -> None:
        opt = self.optimizer("G")
        self.toggle_optimizer(opt)
        opt.zero_grad(set_to_none=True)
        if loss_x is not None:
            self.x_backward(loss_x)
        self.manual_backward(loss_b)
        if loss_x is not None and self.hparams.freeze_shared:
            for p in self.shared_parameters():
                p.grad = None
        opt.step()
        self.untoggle_optimizer(opt)

    def training_step(self, batch, batch_idx):
        if self.phase == 2 and not bool(self.phase2_started):
            self.start_phase2()
        if self.phase == 1:
            self.phase1_step(batch["B"])
        else:
            self.phase2_step(batch["A"], batch["B"])
        self.iteration += 1

    def phase1_step(self, b: torch.Tensor) -> None:
        with torch.no_grad():
            fake = self.dec_B(self.sample(self.enc_B(b)))
        loss_D = self.gan(self.dis_B(b), True) + self.gan(self.dis_B(fake), False)
        self.step("D", loss_D)
        g, _ = self.b_losses(b)
        loss_G = sum(g.values())
        self.generator_step(None, loss_G)
        self.log_losses({"G": loss_G, "D": loss_D, **g})
        self.log("train/phase", 1.0, on_step=True, on_epoch=False)

    def phase2_step(self, x: torch.Tensor, b: torch.Tensor) -> None:
        h = self.hparams
        with torch.no_grad():
            z_b = self.sample(self.enc_B(b))
            fake_xb = self.dec_B(self.sample(self.enc_A(x)))
            fake_bb = self.dec_B(z_b) if h.b_gan_phase2 else None
            fake_ba = self.dec_A(z_b) if self.dis_A is not None else None
        loss_D = self.gan(self.dis_B(b), True) + self.gan(self.dis_B(self.pools["fake_B"].query(fake_xb)), False)
        if fake_bb is not None:
            loss_D = loss_D + self.gan(self.dis_B(fake_bb), False)
        if fake_ba is not None:
            loss_D = loss_D + self.gan(self.dis_A(x), True) + self.gan(self.dis_A(fake_ba), False)
        self.step("D", loss_D)
        gb, z_b = self.b_losses(b, gan=h.b_gan_phase2)
        gx = self.x_losses(x, b, z_b)
        loss_b, loss_x = sum(gb.values()), sum(gx.values())
        self.generator_step(loss_x, loss_b)
        self.log_losses({"G": loss_x + loss_b, "D": loss_D, "G_x": loss_x, "G_B": loss_b, **gb, **gx})
        self.log("train/phase", 2.0, on_step=True, on_epoch=False)

    @torch.no_grad()
    def visuals(self, batch):
        a, b = batch["A"], batch["B"]
        mu_a, mu_b = self.enc_A(a), self.enc_B(b)
        fake_b = self.dec_B(mu_a)
        return {"real_A": a, "rec_A": self.dec_A(mu_a), "fake_B": fake_b, "cyc_A": self.dec_A(self.enc_B(fake_b)),
                "real_B": b, "rec_B": self.dec_B(mu_b), "fake_A": self.dec_A(mu_b)}
