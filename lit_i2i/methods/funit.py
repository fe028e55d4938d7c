"""FUNIT: Liu, Huang, Mallya, Karras, Aila, Lehtinen, Kautz, "Few-Shot Unsupervised Image-to-Image
Translation", ICCV 2019. Follows the official code, NVlabs/FUNIT@198f430 (``funit_model.py``,
``trainer.py``, ``networks.py``, ``blocks.py``, ``configs/funit_animals.yaml``).

Networks (:mod:`lit_i2i.nets.funit`, built from TUNIT's blocks in :mod:`lit_i2i.nets.content_style`):
the few-shot generator G (content encoder, class-model encoder, AdaIN decoder whose AdaIN parameters
an MLP makes from the class code) with its EMA copy G_ema (beta 0.999, averaged after every G step
from iteration 0; what :meth:`FUNIT.translate` uses, as the official ``gen_test``), and the patch
discriminator D (10 pre-activation residual blocks, one 8 x 8 output map per training class at 128 px;
``D(x, y)`` is the map of class y and ``feat``, the features its 1x1 head reads: after the head's
LeakyReLU, as the official in-place activation leaves them).

Per iteration, pairs (x_a, y_a) content images and (x_b, y_b) class images (K = 1 in training, as the
official code; the class code of an image is E_class(x), the K-shot code the mean of K codes);
x_t = G(x_a, E_class(x_b)) the translation, x_r = G(x_a, E_class(x_a)) the reconstruction; D maps are
averaged over the batch and the patch; feat(.) is averaged over the patch before the L1:

| step | term | formula | weight |
|---|---|---|---|
| D | real | mean relu(1 - D(x_b, y_b)) | gan_w = 1 |
| D | fake | mean relu(1 + D(x_t, y_b)), x_t without gradient | gan_w = 1 |
| D | r1 | sum ||d mean(D(x_b, y_b)) / d x_b||^2 / N (the gradient of the *mean* output, no 1/2) | r1_w = 10 |
| G | adv | 0.5 (-mean D(x_t, y_b) - mean D(x_r, y_a)) | gan_w = 1 |
| G | fm_c, fm_m | ||feat(x_r) - feat(x_a)||_1, ||feat(x_t) - feat(x_b)||_1 (targets without gradient) | fm_w = 1 each |
| G | rec | ||x_r - x_a||_1 | r_w = 0.1 |

Logged as ``train/loss_<term>`` (``D`` and ``G`` the weighted sums). Step order as the official loop:
``dis_update`` (D step) then ``gen_update`` (G step, with D as updated by the D step), then the EMA.
On the same weights and pairs both steps' gradients equal the official code's (checked to 1e-8 on
CPU against NVlabs/FUNIT's ``FUNITModel``; not part of the test suite, which cannot import it).
Optimizers: RMSprop(lr 1e-4, weight decay 1e-4, alpha 0.99, eps 1e-8) for G and for D, constant LR
(the official ``lr_policy`` is unset). Kaiming (fan-in) init, zero biases. Length: 100,000 iterations,
i.e. ``trainer.max_steps`` 200,000 (two optimizer steps per iteration).

Data: a multi-domain batch ``{"image", "label"}`` with true class labels (``labelled: true``). The
official loop zips two independently shuffled loaders over the training list (content, class). Here
one shuffled batch of 2N images is split in halves: the first N are the content images, the last N
the class images (so ``data.batch_size`` is twice the official per-step batch). Each half is a
uniform random draw of N training images, like each loader's batch, except that the two halves are
disjoint (x_a and x_b are never the same image in one step) and an epoch shows each image once, not
once per loader. Class pairs are therefore random: y_a = y_b happens at the rate of the classes'
frequencies, as in the official loop.

Inference: ``translate(x, reference=r)`` with G_ema: one reference for all sources, or one per
source; ``translate(x, reference=r, k_shot=K)``: K references (one class code, the mean of their K
codes, for every source) or K per source (``len(x) * K``, source i takes references i*K ... i*K+K-1;
the official ``translate_k_shot``). ``ema=False`` uses the current G. ``direction`` is accepted
and ignored: the references choose the target class. Grids: content, class reference (the next
image of the batch), translation and reconstruction with G_ema and with the current G (the official
``test`` images).

Departures from the official code:
  - Pairs from one batch in halves (see Data) instead of two loaders.
  - Multi-GPU: the official ``--multigpus`` wraps the model in ``DataParallel`` and calls
    ``backward()`` inside each replica's forward, so (as we read it) each of the 8 replicas adds the
    gradient of its own 8-pair mean loss: the official gradient is the *sum* over devices. DDP
    averages. With ``sum_over_devices`` (default) each loss is multiplied by the world size, which gives
    the official gradient; on one device it changes nothing. The scale matters to RMSprop only through
    the weight decay (added to the gradient) and eps. Every rank computes its losses, R1 included, on
    its own N pairs, as an official replica does (R1's mean-output gradient depends on N).
  - The official optimizers take ``lr_gen`` for D and ``lr_dis`` for G (swapped names); here D gets
    ``lr_dis`` and G ``lr_gen``. Both are 1e-4 in the official config, so nothing changes there.
  - The AdaIN layers' unused running-statistics buffers are not kept (``nets.content_style``); G has
    no buffers, so the EMA (``ema_``, which also copies buffers) averages exactly the official
    ``update_average``'s parameters.
  - The animal-faces config resizes to 140 x 140 (bicubic) and random-crops 128; the official resizes
    the shorter side to 140 (bilinear, aspect kept) before the crop.
  - Evaluation: the official repository has no metric code; the paper's few-shot protocol on the
    unseen classes (top-1/top-5 of a classifier on translations, mFID) is not ported here. The suite's
    reference-guided metrics (``metrics.reference: true``, ``mfid``) work through ``translate``.
  - Resume is exact (G, G_ema, D, optimizers, iteration, RNG); the official resume reloads nets and
    optimizers only (no RNG, and the loaders restart).
Kept from the official code on purpose: its discriminator's in-place LeakyReLU, which changes what
its identity shortcuts and its returned features are (:mod:`lit_i2i.nets.funit`; ``official_inplace:
false`` gives the textbook blocks); R1 on the gradient of the *mean* patch output, whose scale depends
on the per-device batch; the adversarial and feature-matching terms on the reconstruction.
Departures from the paper: those the official code makes; the paper was not re-read line by line
here (``../shared/PAPERS.md`` section 11 lists none).
"""

from __future__ import annotations

import copy

import torch

from lit_i2i.core.losses import GANLoss, r1_penalty, recon_loss
from lit_i2i.core.module import TranslationModule, dist_world, ema_, eval_mode, frozen
from lit_i2i.errors import UserError
from lit_i2i.nets.funit import FewShotGenerator, GPPatchMcResDis


class FUNIT(TranslationModule):
    method_name = "funit"
    directions = ("AtoB",)  # any direction name is accepted: the references choose the target class

    def __init__(self, num_classes: int = 119, in_ch: int = 3, nf: int = 64, nf_mlp: int = 256, latent_dim: int = 64,
                 n_mlp_blks: int = 3, n_downs_content: int = 3, n_downs_class: int = 4, n_res_blks: int = 2,
                 dis_nf: int = 64, dis_n_res_blks: int = 10, official_inplace: bool = True,
                 gan_w: float = 1.0, fm_w: float = 1.0, r_w: float = 0.1, r1_w: float = 10.0,
                 lr_gen: float = 1e-4, lr_dis: float = 1e-4, weight_decay: float = 1e-4, ema_beta: float = 0.999,
                 sum_over_devices: bool = True):
        super().__init__(lr_policy="constant")
        self.save_hyperparameters()
        self.G = FewShotGenerator(in_ch, nf, nf_mlp, latent_dim, n_mlp_blks, n_downs_content, n_downs_class, n_res_blks)
        self.D = GPPatchMcResDis(in_ch, dis_nf, dis_n_res_blks, num_classes, official_inplace=official_inplace)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.gan = GANLoss("hinge")

    def build_optimizers(self):
        h = self.hparams
        return {"D": torch.optim.RMSprop(self.D.parameters(), lr=h.lr_dis, weight_decay=h.weight_decay),
                "G": torch.optim.RMSprop(self.G.parameters(), lr=h.lr_gen, weight_decay=h.weight_decay)}

    # ------------------------------------------------------------------ training
    def pairs(self, batch: dict):
        """(x_a, y_a, x_b, y_b): the first half of the batch as content images, the second as class images."""
        x = batch["image"]
        y = torch.as_tensor(batch.get("label", -1), device=x.device).long().reshape(-1).expand(len(x))
        if (y < 0).any():
            raise UserError("FUNIT trains on class labels, but this batch has unlabelled images (label -1): set "
                            "data.init_args.labelled true")
        if (y >= self.hparams.num_classes).any():
            raise UserError(f"label {int(y.max())} in the batch, but model.num_classes is {self.hparams.num_classes}: "
                            "set --model.init_args.num_classes to the number of training classes")
        n = len(x) // 2
        if n == 0:
            raise UserError("FUNIT pairs the first half of a batch (content) with the second (class images): "
                            "data.batch_size must be at least 2")
        return x[:n], y[:n], x[n:2 * n], y[n:2 * n]

    def training_step(self, batch, batch_idx):
        h = self.hparams
        xa, ya, xb, yb = self.pairs(batch)
        scale = float(dist_world()) if h.sum_over_devices else 1.0
        # D step (dis_update): real class images, R1 on them, fakes without gradient
        with torch.no_grad():
            xt = self.G.decode(self.G.encode(xa), self.G.class_code(xb))
        xb_r = xb.detach().requires_grad_(True)
        resp_real, _ = self.D(xb_r, yb)
        d = {"D_real": self.gan(resp_real, True), "D_fake": self.gan(self.D(xt, yb)[0], False),
             "r1": self.r1(resp_real, xb_r)}
        d["D"] = h.gan_w * (d["D_real"] + d["D_fake"]) + h.r1_w * d["r1"]
        self.step("D", scale * d["D"])
        # G step (gen_update): translation and reconstruction against D, D's features and x_a
        content = self.G.encode(xa)
        xt = self.G.decode(content, self.G.class_code(xb))
        xr = self.G.decode(content, self.G.class_code(xa))
        with frozen(self.D):
            resp_t, feat_t = self.D(xt, yb)
            resp_r, feat_r = self.D(xr, ya)
            with torch.no_grad():
                feat_b, feat_a = self.D(xb, yb)[1], self.D(xa, ya)[1]
        g = {"adv": 0.5 * (self.gan(resp_t, True, for_discriminator=False)
                           + self.gan(resp_r, True, for_discriminator=False)), "rec": recon_loss(xr, xa),
             "fm_c": recon_loss(feat_r.mean((2, 3)), feat_a.mean((2, 3))),
             "fm_m": recon_loss(feat_t.mean((2, 3)), feat_b.mean((2, 3)))}
        g["G"] = h.gan_w * g["adv"] + h.r_w * g["rec"] + h.fm_w * (g["fm_c"] + g["fm_m"])
        self.step("G", scale * g["G"])
        ema_(self.G_ema, self.G, h.ema_beta)
        self.log_losses({**d, **g})

    @staticmethod
    def r1(resp_real: torch.Tensor, x_real: torch.Tensor) -> torch.Tensor:
        """The official ``calc_grad2``: sum ||d mean(D(x)) / d x||^2 / N (``x_real`` requires grad; unweighted)."""
        return r1_penalty(resp_real.float().mean(), x_real, gamma=2.0)  # gamma/2 x mean over images of the sum

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def class_codes(self, n: int, reference: torch.Tensor, k_shot: int | None = None, ema: bool = True) -> torch.Tensor:
        """(n, latent_dim) class codes for n sources from ``reference`` (see :meth:`translate`)."""
        g = self.G_ema if ema else self.G
        k, r = k_shot or 1, len(reference)
        if k < 1:
            raise UserError(f"k_shot must be at least 1, got {k_shot}")
        with eval_mode(g):
            if k_shot is None and r not in (1, n):
                raise UserError(f"{r} references for {n} images: give one, one per image, or k_shot=K "
                                "(K references for all, or K per image)")
            if r == k:  # one code for every source (the mean of the K references' codes)
                return g.class_code(reference, k).expand(n, -1)
            if r == n * k:  # K consecutive references per source
                return g.class_code(reference, k)
            raise UserError(f"{r} references for {n} images with k_shot={k}: give {k} or {n * k}")

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str | None = None, reference: torch.Tensor | None = None,
                  k_shot: int | None = None, ema: bool = True) -> torch.Tensor:
        """Reference-guided translation (the references' class, the sources' content); ``direction`` is ignored."""
        if reference is None:
            raise UserError("FUNIT translates with class images: give reference=... (--reference, or "
                            "--metrics.reference true)")
        codes = self.class_codes(len(x), reference.to(x.device), k_shot, ema)
        g = self.G_ema if ema else self.G
        with eval_mode(g):
            return g.decode(g.encode(x), codes)

    @torch.no_grad()
    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        """Columns: content x, class reference (the next image of the batch), translation and
        reconstruction with G_ema, then with the current G."""
        x = batch["image"]
        ref = x.roll(-1, 0)
        vis = {"content": x, "class": ref}
        for ema, tag in ((True, "ema"), (False, "G")):
            vis[f"output ({tag})"] = self.translate(x, reference=ref, ema=ema)
            vis[f"rec. ({tag})"] = self.translate(x, reference=x, ema=ema)
        return vis
