"""XGAN: Royer, Bousmalis, Gouws, Bertsch, Mosseri, Cole, Murphy, "XGAN: Unsupervised Image-to-Image
Translation for Many-to-Many Mappings", arXiv 1711.05139 (Google; the seed slides of the same title).
No official code exists. The layer plan, loss forms, weights and optimizers below follow the one
public reimplementation the spec names (IAmigos/avatar-image-generator, ``config_xgan.json``) where
the paper gives no number here; each such choice is marked [reimpl] or [choice].

A dual auto-encoder with a joint embedding: ``enc_A`` = e1 and ``enc_B`` = e2 share their high-level
layers, ``dec_A`` = d1 and ``dec_B`` = d2 their low-level layers (``lit_i2i.nets.xgan``; one module
object registered under both domains). Translation A->B is d2(e1(x)), B->A is d1(e2(x)). Domain A
is the paper's domain 1 (faces), B domain 2 (cartoons).

| term | formula | weight (default) |
|---|---|---|
| rec_A, rec_B | ‖d1(e1(a)) − a‖₂, ‖d2(e2(b)) − b‖₂ (per image, not squared; mean over the batch) | rec_w = 1 [reimpl] |
| dann | CE(c_dann(GRL(e1(a))), A) + CE(c_dann(GRL(e2(b))), B) | dann_w = 1 [reimpl] |
| sem_AB, sem_BA | ‖e1(a) − e2(d2(e1(a)))‖₁, ‖e2(b) − e1(d1(e2(b)))‖₁ (per sample; mean over the batch) | sem_w = 0.5 [reimpl] |
| gan_B (optional) | BCE(D_B(d2(e1(a))), real) | gan_w = 0.7 [reimpl]; 0 = off |
| teach (optional) | ‖T(a) − P(e1(a))‖² (mean), T fixed, P a learnt linear map | teach_w = 0 (off, as the reimpl) |
| loss_D_B | BCE(D_B(b), real) + BCE(D_B(d2(e1(a))), fake), stepped only while D_B's accuracy < d_threshold | 1 |

The norms are the reimplementation's (``losses/__init__.py``: ``torch.norm(..., p=2 / p=1, dim=1)`` of the
flattened difference, then the batch mean): its weights balance these sums, not per-element means.
``rec_loss`` / ``sem_distance`` also take ``l2`` / ``l1`` (per-element means: mean squared error, mean
absolute error), this module's forms until 2026-12-02; at the digit configs' size they shrink the
reconstruction term about 200-fold against the GAN and domain terms (see ``bn_batches`` below for what
that did).

``dann``: binary (``dann_classes: 2``, one logit) or the appendix's multi-class form (``dann_classes:
4``): the classifier tells e1(a), e2(b), e2(d2(e1(a))) and e1(d1(e2(b))) apart (domain x real or
translated) and the encoders, through the same reversed gradient, make the four indistinguishable.
GRL = gradient reversal (``lit_i2i.core.grad_reverse``) with scale ``grl_scale``, optionally ramped
by DANN's 2/(1+exp(-10 p)) - 1 over ``grl_ramp_steps`` iterations. ``sem_detach`` [reimpl: true]
stops the gradient through the target embedding (e1(a) in sem_AB); false is the paper's formula.
``gan_domains``: ``B`` (the paper: a discriminator on translated cartoons only) or ``AB``.
Discriminator thresholding (the slides): D is stepped on a batch only while its accuracy on that
batch (real called real, fake called fake, at logit 0), measured before the update, is below
``d_threshold`` [choice: 0.8; the slides give no value here]; skipped steps are logged as
``train/d_updated`` 0.

Order per iteration: one G step (encoders, decoders, c_dann, P: every term above; D frozen), then the
D step on the detached translations. Optimizers [reimpl]: G Adam(1e-4, 0.9, 0.999) with c_dann in
its own parameter group Adam(1e-3, 0.99, 0.999) (one backward through the GRL trains both: the point
of gradient reversal); D Adam(1e-3, 0.5, 0.999). No LR schedule. Batch 32 [reimpl], 64x64 images.

Layer sharing (``sharing``, the appendix): ``partial`` (default), ``none``, ``encoder`` (one encoder).
BatchNorm batches (``bn_batches``) [reimpl: ``domain``]: each domain's batch runs through every
layer on its own (e1's, then e2's, as the reimplementation's separate calls), so in training the
shared layers' BatchNorm normalises each domain by its own batch statistics, and their running
averages (used at test time) mix both domains; ``joint`` concatenates the two domains before the
shared layers (one BatchNorm batch of the mixture, the same statistics as at test time). ``joint`` was
this module's default until 2026-12-02: at the built-in street-digits -> digits size (then with the
per-element mean losses) it kept the B autoencoder from reconstructing (the GAN term alone, 300
iterations: rec_B mean squared error 0.33-0.38 joint vs 0.12-0.13 domain; the batch mean image scores
0.11), and the domain classifier won outright (loss near 0, with spikes above 20 when the reversed
gradient flipped it; about log 2 with per-domain batches).

Inference: ``translate(x, direction, mode=None)``; ``mode="neighbours"`` returns, for each input, its
nearest image (cosine distance of the embeddings) in a bank of the other domain set by
:meth:`XGAN.set_neighbour_bank` (the slides' nearest-neighbour retrieval); :meth:`XGAN.neighbours`
gives the distances and indices.

Departures / choices where the paper is silent (besides those marked above):
  - Teacher: the paper distils FaceNet into e1; FaceNet is not shipped, so ``teacher`` names a
    frozen shipped digit classifier (its 64-d features) or ``package.module:factory`` for any other
    embedding network (``lit_i2i.nets.xgan.fixed_encoder``); P maps the embedding to the teacher's
    dimension [choice].
  - c_dann's hidden widths and the discriminator's widths are the reimplementation's at 64x64; the
    digit configs use smaller ones (their headers say which).
  - The reimplementation's extra denoiser network is not included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lit_i2i.core.grad_reverse import dann_lambda, grad_reverse
from lit_i2i.core.module import TranslationModule
from lit_i2i.errors import UserError
from lit_i2i.nets.vae import unique_parameters
from lit_i2i.nets.xgan import CodeLinear, DomainClassifier, ImageDiscriminator, XGANSpec, fixed_encoder, xgan_autoencoders

DISTANCES = ("l1norm", "l2norm", "l1", "l2", "cosine")


def distance(x: torch.Tensor, y: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean over the batch of a per-sample distance between two batches (codes or images, flattened):
    ``l1norm`` (‖x − y‖₁), ``l2norm`` (‖x − y‖₂, not squared), or per-element means: ``l1`` (mean
    |x - y|), ``l2`` (mean squared error), ``cosine`` (mean 1 - cos); in float32."""
    x, y = x.float().flatten(1), y.float().flatten(1)
    if kind in ("l1norm", "l2norm"):  # vector_norm: a zero difference has a zero (not NaN) gradient
        return torch.linalg.vector_norm(x - y, ord=1 if kind == "l1norm" else 2, dim=1).mean()
    if kind == "l1":
        return (x - y).abs().mean()
    if kind == "l2":
        return (x - y).pow(2).mean()
    if kind == "cosine":
        return (1 - F.cosine_similarity(x, y, dim=1)).mean()
    raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got {kind!r}")


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


class XGAN(TranslationModule):
    method_name = "xgan"
    directions = ("AtoB", "BtoA")

    def __init__(self, image_size: int = 64, a_ch: int = 3, b_ch: int = 3, enc_channels: list[int] | None = None,
                 n_shared_enc: int = 2, emb_dim: int = 1024, dec_channels: list[int] | None = None,
                 n_shared_dec: int = 2, norm: str = "batch", dropout: float = 0.5, sharing: str = "partial",
                 bn_batches: str = "domain",
                 dann_hidden: list[int] | None = None, dann_dropout: float = 0.5, dann_classes: int = 2,
                 grl_scale: float = 1.0, grl_ramp_steps: int = 0,
                 rec_w: float = 1.0, dann_w: float = 1.0, sem_w: float = 0.5, gan_w: float = 0.7, teach_w: float = 0.0,
                 rec_loss: str = "l2norm", sem_distance: str = "l1norm", sem_detach: bool = True,
                 gan_domains: str = "B", disc_channels: list[int] | None = None, d_threshold: float = 0.8,
                 teacher: str | None = None, teacher_distance: str = "l2",
                 lr: float = 1e-4, beta1: float = 0.9, beta2: float = 0.999, lr_dann: float = 1e-3,
                 beta1_dann: float = 0.99, lr_D: float = 1e-3, beta1_D: float = 0.5, weight_decay: float = 0.0,
                 lr_policy: str = "constant", n_epochs: int = 100, n_epochs_decay: int = 100):
        super().__init__(lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay)
        self.save_hyperparameters()
        if dann_classes not in (2, 4):
            raise ValueError(f"dann_classes must be 2 (binary domain classifier) or 4 (the multi-class form), "
                             f"got {dann_classes}")
        if bn_batches not in ("domain", "joint"):
            raise ValueError(f"bn_batches must be 'domain' or 'joint', got {bn_batches!r}")
        if gan_domains not in ("B", "AB"):
            raise ValueError(f"gan_domains must be 'B' or 'AB', got {gan_domains!r}")
        for name, kind in (("rec_loss", rec_loss), ("sem_distance", sem_distance),
                           ("teacher_distance", teacher_distance)):
            if kind not in DISTANCES:
                raise ValueError(f"{name} must be one of {', '.join(DISTANCES)}, got {kind!r}")
        if teach_w > 0 and not teacher:
            raise UserError("model.teach_w > 0 needs model.teacher (a shipped digit classifier, e.g. street-digits)")
        self.spec = XGANSpec(image_size, a_ch, tuple(enc_channels or (32, 64, 128, 256)), n_shared_enc, emb_dim,
                             tuple(dec_channels or (512, 256, 128, 64)), n_shared_dec, norm, dropout)
        self.enc_A, self.dec_A, self.enc_B, self.dec_B = xgan_autoencoders(self.spec, a_ch, b_ch, sharing)
        hidden = tuple(dann_hidden if dann_hidden is not None else (512, 256, 128, 64, 32, 16))
        self.c_dann = DomainClassifier(emb_dim, hidden, 1 if dann_classes == 2 else 4, dann_dropout)
        dch = tuple(disc_channels or (16, 32, 32, 32))
        self.use_gan = gan_w > 0
        if self.use_gan:
            self.dis_B = ImageDiscriminator(b_ch, image_size, dch)
            if gan_domains == "AB":
                self.dis_A = ImageDiscriminator(a_ch, image_size, dch)
        self.teacher = None
        if teacher:
            self.teacher = fixed_encoder(teacher)
            self.teacher_proj = CodeLinear(emb_dim, self.teacher.num_features)
        self._bank: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    # ------------------------------------------------------------------ nets and optimizers
    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # a fixed network: BatchNorm statistics and dropout never change
        return self

    def autoencoder_parameters(self) -> list[torch.nn.Parameter]:
        extra = [self.teacher_proj] if self.teacher is not None else []
        return unique_parameters(self.enc_A, self.enc_B, self.dec_A, self.dec_B, *extra)

    def discriminators(self) -> list[torch.nn.Module]:
        return [getattr(self, n) for n in ("dis_A", "dis_B") if hasattr(self, n)]

    def build_optimizers(self):
        h = self.hparams
        groups = [{"params": self.autoencoder_parameters()},
                  {"params": list(self.c_dann.parameters()), "lr": h.lr_dann, "betas": (h.beta1_dann, h.beta2)}]
        opts = {"G": torch.optim.Adam(groups, lr=h.lr, betas=(h.beta1, h.beta2), weight_decay=h.weight_decay)}
        if self.use_gan:
            opts["D"] = torch.optim.Adam(unique_parameters(*self.discriminators()), lr=h.lr_D, betas=(h.beta1_D, h.beta2))
        return opts

    # ------------------------------------------------------------------ forward
    def _check(self, x: torch.Tensor, what: str) -> None:
        s = self.spec.image_size
        if tuple(x.shape[-2:]) != (s, s):
            raise UserError(f"XGAN: {what} images are {x.shape[-1]}x{x.shape[-2]}, but model.image_size is {s} "
                            "(its fully connected layers need that size); set model.init_args.image_size or the "
                            "data's crop size")

    def encode(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(e1(a), e2(b)); with ``bn_batches: joint`` the shared layers run once on both domains together
        (module docstring)."""
        n = len(a)
        if self.hparams.bn_batches == "domain":
            return self.enc_A(a), self.enc_B(b)
        if self.enc_A is self.enc_B:
            return self.enc_A(torch.cat([a, b])).split([n, len(b)])
        if self.enc_A.shared is self.enc_B.shared:
            h = torch.cat([self.enc_A.front(a), self.enc_B.front(b)])
            return self.enc_A.shared(h).split([n, len(b)])
        return self.enc_A(a), self.enc_B(b)

    def decode(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """d1 and d2 of both embeddings: rec_A = d1(z_a), fake_A = d1(z_b), fake_B = d2(z_a), rec_B = d2(z_b)."""
        if self.hparams.bn_batches == "domain":  # the shared layers once per source domain, each back on each
            h = {}
            for src, z in (("A", z_a), ("B", z_b)):
                h[src, "A"] = self.dec_A.shared(z)
                h[src, "B"] = h[src, "A"] if self.dec_A.shared is self.dec_B.shared else self.dec_B.shared(z)
            return {"rec_A": self.dec_A.back(h["A", "A"]), "fake_A": self.dec_A.back(h["B", "A"]),
                    "fake_B": self.dec_B.back(h["A", "B"]), "rec_B": self.dec_B.back(h["B", "B"])}
        n = len(z_a)
        z = torch.cat([z_a, z_b])
        h_a = self.dec_A.shared(z)
        h_b = h_a if self.dec_A.shared is self.dec_B.shared else self.dec_B.shared(z)
        out_a, out_b = self.dec_A.back(h_a), self.dec_B.back(h_b)
        return {"rec_A": out_a[:n], "fake_A": out_a[n:], "fake_B": out_b[:n], "rec_B": out_b[n:]}

    def forward_all(self, a: torch.Tensor, b: torch.Tensor, reencode: bool = True) -> dict[str, torch.Tensor]:
        z_a, z_b = self.encode(a, b)
        v = {"real_A": a, "real_B": b, "z_A": z_a, "z_B": z_b, **self.decode(z_a, z_b)}
        if reencode:  # the feature-level cycle: e1(d1(z_b)) and e2(d2(z_a))
            v["z_fake_A"], v["z_fake_B"] = self.encode(v["fake_A"], v["fake_B"])
        return v

    def grl(self) -> float:
        h = self.hparams
        if h.grl_ramp_steps > 0:
            return h.grl_scale * dann_lambda(self.iteration / h.grl_ramp_steps)
        return h.grl_scale

    # ------------------------------------------------------------------ losses
    def dann_loss(self, v: dict[str, torch.Tensor], scale: float = 1.0) -> torch.Tensor:
        """The domain classifier's cross-entropy on the embeddings behind a gradient-reversal layer."""
        if self.hparams.dann_classes == 2:
            z = torch.cat([v["z_A"], v["z_B"]])
            logit = self.c_dann(grad_reverse(z, scale)).squeeze(1).float()
            target = torch.cat([torch.zeros(len(v["z_A"])), torch.ones(len(v["z_B"]))]).to(logit)
            return F.binary_cross_entropy_with_logits(logit, target)
        parts = [v["z_A"], v["z_B"], v["z_fake_B"], v["z_fake_A"]]  # classes 0, 1, 2, 3
        logits = self.c_dann(grad_reverse(torch.cat(parts), scale)).float()
        target = torch.cat([torch.full((len(p),), k, dtype=torch.long) for k, p in enumerate(parts)]).to(logits.device)
        return F.cross_entropy(logits, target)

    def generator_losses(self, v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.hparams
        losses = {"rec_A": h.rec_w * distance(v["rec_A"], v["real_A"], h.rec_loss),
                  "rec_B": h.rec_w * distance(v["rec_B"], v["real_B"], h.rec_loss)}
        if h.dann_w > 0:
            losses["dann"] = h.dann_w * self.dann_loss(v, self.grl())
        if h.sem_w > 0:
            target_a = v["z_A"].detach() if h.sem_detach else v["z_A"]
            target_b = v["z_B"].detach() if h.sem_detach else v["z_B"]
            losses["sem_AB"] = h.sem_w * distance(target_a, v["z_fake_B"], h.sem_distance)
            losses["sem_BA"] = h.sem_w * distance(target_b, v["z_fake_A"], h.sem_distance)
        if self.use_gan:
            losses["gan_B"] = h.gan_w * bce(self.dis_B(v["fake_B"]), True)
            if h.gan_domains == "AB":
                losses["gan_A"] = h.gan_w * bce(self.dis_A(v["fake_A"]), True)
        if self.teacher is not None and h.teach_w > 0:
            with torch.no_grad():
                t = self.teacher.features(v["real_A"])
            losses["teach"] = h.teach_w * distance(t, self.teacher_proj(v["z_A"]), h.teacher_distance)
        return losses

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, netD) -> tuple[torch.Tensor, torch.Tensor]:
        """(BCE real + BCE fake, accuracy at logit 0) of one discriminator on one batch."""
        d_real, d_fake = netD(real), netD(fake)
        acc = ((d_real > 0).float().mean() + (d_fake < 0).float().mean()) / 2
        return bce(d_real, True) + bce(d_fake, False), acc.detach()

    def needs_reencoding(self) -> bool:
        h = self.hparams
        return h.sem_w > 0 or (h.dann_w > 0 and h.dann_classes == 4)

    def training_step(self, batch, batch_idx):
        a, b = batch["A"], batch["B"]
        self._check(a, "A")
        self._check(b, "B")
        v = self.forward_all(a, b, reencode=self.needs_reencoding())
        g = self.generator_losses(v)
        loss_G = sum(g.values())
        self.step("G", loss_G)
        logs = {"G": loss_G, **g}
        if self.use_gan:
            pairs = [("B", b, v["fake_B"], self.dis_B)]
            if self.hparams.gan_domains == "AB":
                pairs.append(("A", a, v["fake_A"], self.dis_A))
            loss_D, stepped = 0.0, []
            for name, real, fake, netD in pairs:
                d, acc = self.discriminator_loss(real, fake.detach(), netD)
                logs[f"D_{name}"], logs[f"d_acc_{name}"] = d, acc
                if float(acc) < self.hparams.d_threshold:  # thresholding: train D only while it is not too good
                    loss_D = loss_D + d
                    stepped.append(name)
            if stepped:
                self.step("D", loss_D)
            logs["D"] = sum(logs[f"D_{n}"] for n, *_ in pairs)
            logs["d_updated"] = torch.tensor(float(bool(stepped)))
        self.log_losses(logs)

    # ------------------------------------------------------------------ the one door
    def _enc(self, domain: str):
        return self.enc_A if domain == "A" else self.enc_B

    @torch.no_grad()
    def embed(self, x: torch.Tensor, domain: str = "A", batch_size: int = 256) -> torch.Tensor:
        """Embeddings of images of ``domain`` (A: e1, B: e2), in batches, in the current mode."""
        enc = self._enc(domain)
        return torch.cat([enc(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def neighbours(self, x: torch.Tensor, bank: torch.Tensor, k: int = 1, direction: str = "AtoB",
                   bank_codes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(cosine distances, indices), each (N, k): the ``k`` images of ``bank`` (images of the target
        domain of ``direction``) nearest to each ``x`` in the joint embedding. Runs in eval mode."""
        src, tgt = self._direction(direction)
        was = self.training
        self.eval()
        try:
            q = F.normalize(self.embed(x, src).float(), dim=1)
            c = bank_codes if bank_codes is not None else self.embed(bank.to(x.device), tgt)
            d = 1 - q @ F.normalize(c.float(), dim=1).t()
            dist, idx = d.topk(min(k, d.shape[1]), dim=1, largest=False)
        finally:
            self.train(was)
        return dist, idx

    def set_neighbour_bank(self, images: torch.Tensor, domain: str = "B") -> None:
        """Images of ``domain`` that ``translate(..., mode="neighbours")`` retrieves from (their
        embeddings are computed now, in eval mode, and kept with them; not checkpointed)."""
        was = self.training
        self.eval()
        try:
            codes = self.embed(images.to(self.device), domain)
        finally:
            self.train(was)
        self._bank[domain] = (images, codes)

    @staticmethod
    def _direction(direction: str) -> tuple[str, str]:
        if direction == "AtoB":
            return "A", "B"
        if direction == "BtoA":
            return "B", "A"
        raise ValueError(f"XGAN translates ('AtoB', 'BtoA'), not {direction!r}")

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None,
                  mode: str | None = None) -> torch.Tensor:
        """A->B: d2(e1(x)); B->A: d1(e2(x)). ``mode="neighbours"``: the nearest bank image instead."""
        src, tgt = self._direction(direction)
        if mode in (None, "translate"):
            return (self.dec_B if tgt == "B" else self.dec_A)(self._enc(src)(x))
        if mode == "neighbours":
            if tgt not in self._bank:
                raise UserError(f"XGAN: mode 'neighbours' needs a bank of {tgt} images: call "
                                f"model.set_neighbour_bank(images, {tgt!r}) first")
            images, codes = self._bank[tgt]
            _, idx = self.neighbours(x, images, 1, direction, bank_codes=codes)
            return images.to(x.device)[idx[:, 0].to(images.device)]
        raise UserError(f"XGAN: unknown translate mode {mode!r}; choose translate or neighbours")

    @torch.no_grad()
    def visuals(self, batch):
        v = self.forward_all(batch["A"], batch["B"], reencode=False)
        return {k: v[k] for k in ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B")}
