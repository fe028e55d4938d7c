"""TUNIT: Baek, Choi, Uh, Yoo, Shim, "Rethinking the Truly Unsupervised Image-to-Image Translation",
ICCV 2021. Follows the official code, clovaai/tunit@405a77c (``main.py``, ``train/train_unsupervised.py``,
``train/train_semisupervised.py``, ``train/train_supervised.py``, ``tools/ops.py``, ``models/*``).

Networks (``lit_i2i.nets.content_style``): the guiding network E (VGG-11-BN, global pooling, a
style head of ``style_dim`` 128 and a cluster head of ``n_clusters`` K logits) with its EMA copy
E_ema (beta 0.999, the MoCo key encoder, updated from iteration 0); the generator G (content encoder
+ AdaIN decoder whose AdaIN parameters an MLP makes from the style code; residual branches x 0.1)
with its EMA copy G_ema (beta 0.999, copied from G at ``ema_start`` and averaged after); the
multi-task discriminator D (FRN residual blocks, one logit per cluster; the logit of the image's
(pseudo-)label is used). A queue of the last ``queue_size`` (1,024) keys, E_ema's style codes of
the augmented views, gives the negatives of both contrastive losses.

Per iteration (x: a batch, x~: its second view, x_ref = x[perm] a random permutation of the same batch,
y = argmax E_class(x) without gradient, y_ref = y[perm]; s(.) = E_style, k(.) = E_ema's style):

| step | term | formula | weight |
|---|---|---|---|
| E | moco | InfoNCE(s(x), k(x~), queue), tau 0.07, no L2 normalisation | w_moco = 1 |
| E | iic | -I(E_class(x); E_class(x~)) (IIC: symmetrised joint of the two softmaxes) | w_iic = 5 |
| E | ce (semi-supervised labelled iterations only) | CE(E_class(x), y) + CE(E_class(x~), y) | w_ce = 5 |
| E | (the sum, once the GANs train) | x guide_scale | 0.1 |
| D | D_real, D_fake | mean relu(1 - D(x_ref, y_ref)) + mean relu(1 + D(G(x, s(x_ref)), y_ref)) | 1 |
| D | r1 | sum ||d D(x_ref, y_ref) / d x_ref||^2 / N (no 1/2) | w_gp = 10 |
| G and E | adv | -mean D(G(x, s(x_ref)), y_ref) - mean D(G(x, s(x)), y) | w_adv = 1 |
| G and E | style | InfoNCE(s(G(x, s(x_ref))), k(x_ref), queue) | w_vec = 0.01 |
| G and E | rec | ||G(x, s(x)) - x||_1 | w_rec = 0.1 |

Step order, as the official loop: E step; then (from ``separated``) D step and the G step, whose loss
goes into G *and* E (both optimizers step); then the keys k(x~) are enqueued (oldest out), E_ema and
(from ``ema_start``) G_ema averaged. Optimizers: Adam(1e-4, weight decay 1e-3) for E, RMSprop(1e-4,
weight decay 1e-4) for G and D; no LR schedule.

Modes (``mode``), all counted in iterations (the official epoch x 1,000 counts):
  - ``unsupervised`` (official p_semi = 0): E alone until ``separated`` = 65,000, G_ema from 66,000.
  - ``semi`` (0 < p_semi < 1, the datamodule's ``label_fraction``): the official semi-supervised loop.
    Labelled iterations read the labelled stream of the batch (``sup_image``/``sup_view``/``sup_label``,
    :mod:`datamodules.semi`) and train E's class head with CE on the true labels (and the GANs with
    the true labels); the other iterations are unsupervised (IIC) and their E loss is always x 0.1.
    The first ``semi_sup_only`` = 20 x max(c / 10, int(c p)) iterations are all labelled (the official
    20 short epochs); afterwards every cycle of c = ``semi_cycle`` (1,000) iterations starts with
    int(c p) labelled ones. ``separated`` = semi_sup_only + 15 c, ``ema_start`` = semi_sup_only + 16 c.
  - ``supervised`` (p_semi = 1): true labels; E loss = 0.1 x moco only; GANs from iteration 0,
    G_ema from ``semi_cycle``.

Ablations (not in the official code; the paper's Figures 4 and 5): ``joint: false`` trains the
guiding network alone until ``separated`` and then freezes it (separate training); ``feedback``
lists the translation losses whose gradient reaches E (default all of ``adv``, ``style``, ``rec``):
a term left out still trains G exactly as before but sends nothing to E (two backward passes).

Inference: ``translate(x, reference=r)`` (style from r, E_ema in eval mode, G_ema once it has
started, else G), ``translate(x, mode="cluster:k")`` (the mean style of cluster k: a running mean of
the key encoder's codes of the training images assigned to k, or set from given images by
:meth:`set_cluster_styles`, which is what the official validation does with its held-out images),
``cluster(x)`` (argmax of E_class, eval mode: the official ``cluster_eval``). Grids: the source x
reference matrix (row 0 the references, column 0 the sources) and, per cluster, its most confident
recent training image above the sources translated with that cluster's mean style.

Departures from the official code:
  - The queue is one persistent module buffer (FIFO, checkpointed): the official training function
    never returns its updated queue, so every epoch restarts from the 32 stale keys of
    ``initialize_queue`` (main.py:264, 305; train_unsupervised.py:54, 185-186): a bug, not copied.
    It is initialised at the first iteration with the key encoder's codes of that batch's images
    (the official: of the views of another batch). Under DDP every rank's keys are gathered before
    enqueueing (as MoCo; the official keeps one queue per process), so all ranks hold one queue.
  - Counts are in iterations; the official rescaling by ``iters // 1000`` (and its crash below 1,000
    iterations) is not copied. In semi-supervised mode the official minimum of 100 labelled
    iterations per short epoch is written as semi_cycle // 10.
  - E_ema's BatchNorm buffers are copied from E after every iteration (official: at each epoch end,
    i.e. before every evaluation; both give E's statistics at evaluation time).
  - One forward of E on x serves both heads, and the GAN step reuses one forward of E and G for the D
    step's fake and the G step (official: separate ``moco``/``iic`` passes and a no-grad copy for D;
    the values are the same, nothing updates E or G in between); s(x_ref) is s(x)[perm]. Only
    BatchNorm's running averages (used in eval mode) see fewer updates per iteration.
  - Before ``ema_start`` translation uses G (the official G_EMA is a second random initialisation
    until then); the official G_EMA starts one whole epoch after the GANs, here at ``ema_start``.
  - R1 uses ``core.r1_penalty`` with gamma = 2 w_gp (the same 10 sum ||grad||^2 / N).
  - Resume is exact (queue, cluster statistics, RNG and iteration in the checkpoint); the official
    resume can reload its best-FID checkpoint and skip training.
Departures from the paper: those of the official code above (65k-iteration warm-up of E before the
joint phase and its x 0.1 loss, RMSprop for G and D, the adversarial term on the reconstruction).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from lit_i2i.core.losses import GANLoss, iic_loss, info_nce, r1_penalty, recon_loss
from lit_i2i.core.module import TranslationModule, dist_world, ema_, eval_mode, frozen
from lit_i2i.errors import UserError
from lit_i2i.nets.content_style import (
    AdaINGenerator,
    MultiTaskDiscriminator,
    VGGGuidingNetwork,
)

MODES = ("unsupervised", "semi", "supervised")
FEEDBACK = ("adv", "style", "rec")


@torch.no_grad()
def gather_ranks(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` (same shape on all ranks) concatenated along dim 0 in rank order (MoCo's
    ``concat_all_gather``); ``t`` itself without a process group."""
    if dist_world() == 1:
        return t
    parts = [torch.empty_like(t) for _ in range(dist_world())]
    torch.distributed.all_gather(parts, t.contiguous())
    return torch.cat(parts)


class KeyQueue(nn.Module):
    """The last ``size`` keys, oldest first, as buffers (so checkpointed): ``keys[:count]``."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.size = size
        self.register_buffer("keys", torch.zeros(size, dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.count)

    def get(self) -> torch.Tensor:
        return self.keys[: len(self)]

    @torch.no_grad()
    def enqueue(self, k: torch.Tensor) -> None:
        new = torch.cat([self.get(), k.detach().to(self.keys)])[-self.size:]
        self.keys[: len(new)] = new
        self.count.fill_(len(new))


class TUNIT(TranslationModule):
    method_name = "tunit"
    directions = ("AtoB",)  # any direction name is accepted: the reference or the cluster chooses the target

    def __init__(self, img_size: int = 128, in_ch: int = 3, n_clusters: int = 10, style_dim: int = 128,
                 ngf: int | None = None, content_size: int = 16, n_res: int = 2, mlp_dim: int = 256,
                 ndf: int | None = None, max_dim_D: int = 1024, guide_arch: str = "vgg11", guide_width: float = 1.0,
                 mode: str = "unsupervised", p_semi: float | None = None, separated: int | None = None,
                 ema_start: int | None = None, semi_cycle: int = 1000, semi_sup_only: int | None = None,
                 w_moco: float = 1.0, w_iic: float = 5.0, w_ce: float = 5.0, guide_scale: float = 0.1,
                 w_adv: float = 1.0, w_rec: float = 0.1, w_vec: float = 0.01, w_gp: float = 10.0,
                 temperature: float = 0.07, queue_size: int = 1024, ema_beta: float = 0.999,
                 joint: bool = True, feedback: list[str] | None = None,
                 lr_E: float = 1e-4, weight_decay_E: float = 1e-3, lr_G: float = 1e-4, lr_D: float = 1e-4,
                 weight_decay_GD: float = 1e-4, cluster_momentum: float = 0.99, max_iterations: int | None = None):
        super().__init__(lr_policy="constant")
        self.save_hyperparameters()
        if mode not in MODES:
            raise UserError(f"model.mode must be one of {', '.join(MODES)}, got {mode!r}")
        if p_semi is not None and not 0.0 < p_semi < 1.0 and mode == "semi":
            raise UserError(f"model.p_semi must be in (0, 1) for mode semi, got {p_semi}")
        self.feedback = tuple(FEEDBACK if feedback is None else feedback)
        bad = [f for f in self.feedback if f not in FEEDBACK]
        if bad:
            raise UserError(f"model.feedback: unknown term(s) {', '.join(bad)}; choose from {', '.join(FEEDBACK)}")
        self.mode, self.p_semi = mode, p_semi
        self.E = VGGGuidingNetwork(style_dim, n_clusters, in_ch, guide_arch, guide_width)
        self.G = AdaINGenerator(img_size, style_dim, ngf, n_res, content_size, in_ch, in_ch, mlp_dim)
        self.D = MultiTaskDiscriminator(img_size, n_clusters, in_ch, ndf, max_dim_D)
        self.E_ema = copy.deepcopy(self.E).requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.queue = KeyQueue(queue_size, style_dim)
        self.gan = GANLoss("hinge")
        self.register_buffer("cluster_sum", torch.zeros(n_clusters, style_dim))
        self.register_buffer("cluster_n", torch.zeros(n_clusters))
        self.register_buffer("cluster_rep", torch.zeros(n_clusters, in_ch, img_size, img_size))
        self.register_buffer("cluster_rep_score", torch.zeros(n_clusters))

    # ------------------------------------------------------------------ schedule (iterations)
    def semi_fraction(self) -> float:
        p = self.p_semi
        if p is None and self._trainer is not None:
            p = getattr(self.trainer.datamodule, "label_fraction", None)
        if p is None or not 0.0 < p < 1.0:
            raise UserError("model.mode semi needs model.p_semi in (0, 1) (or a datamodule with that label_fraction)")
        return float(p)

    @property
    def sup_only(self) -> int:
        h = self.hparams
        if h.semi_sup_only is not None:
            return int(h.semi_sup_only)
        c = h.semi_cycle
        return 20 * max(c // 10, int(c * self.semi_fraction()))

    @property
    def separated(self) -> int:
        """First iteration of the GANs (the end of E's warm-up)."""
        h = self.hparams
        if h.separated is not None:
            return int(h.separated)
        if self.mode == "semi":
            return self.sup_only + 15 * h.semi_cycle
        return 65_000 if self.mode == "unsupervised" else 0

    @property
    def ema_start(self) -> int:
        """Iteration at which G_ema is copied from G (averaged from then on)."""
        h = self.hparams
        if h.ema_start is not None:
            return int(h.ema_start)
        if self.mode == "semi":
            return self.sup_only + 16 * h.semi_cycle
        return 66_000 if self.mode == "unsupervised" else h.semi_cycle

    def labelled_iteration(self, it: int) -> bool:
        """Whether iteration ``it`` trains on true labels (semi: the labelled stream)."""
        if self.mode != "semi":
            return self.mode == "supervised"
        if it < self.sup_only:
            return True
        c = self.hparams.semi_cycle
        return (it - self.sup_only) % c < int(c * self.semi_fraction())

    def finished(self) -> bool:
        n = self.hparams.max_iterations
        return n is not None and self.iteration >= n

    def on_train_batch_start(self, batch, batch_idx):
        if self.finished():  # e.g. resumed from the last checkpoint of a finished run
            self.trainer.should_stop = True
            return -1
        return None

    def end_of_batch(self) -> None:
        super().end_of_batch()
        if self.finished() and self._trainer is not None:
            self.trainer.should_stop = True

    # ------------------------------------------------------------------ optimizers
    def build_optimizers(self):
        h = self.hparams
        return {"E": torch.optim.Adam(self.E.parameters(), lr=h.lr_E, weight_decay=h.weight_decay_E),
                "D": torch.optim.RMSprop(self.D.parameters(), lr=h.lr_D, weight_decay=h.weight_decay_GD),
                "G": torch.optim.RMSprop(self.G.parameters(), lr=h.lr_G, weight_decay=h.weight_decay_GD)}

    def joint_step(self, names: tuple[str, ...], fed: torch.Tensor, cut: torch.Tensor | None = None) -> None:
        """One update of several optimizers from one loss (TUNIT's G step moves G and E). ``cut``: loss
        terms whose gradient reaches every named optimizer's parameters except E's (the ``feedback``
        ablation: E keeps the gradient of ``fed`` only)."""
        opts = [self.optimizer(n) for n in names]
        for o in opts:
            o.zero_grad(set_to_none=True)
        if cut is None:
            self.manual_backward(fed)
        else:
            if fed.requires_grad:
                self.manual_backward(fed, retain_graph=True)
            saved = [None if p.grad is None else p.grad.clone() for p in self.E.parameters()]
            self.manual_backward(cut)
            for p, g in zip(self.E.parameters(), saved):
                p.grad = g
        for o in opts:
            o.step()
        for o in self.optimizers():
            o.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ training
    def _inputs(self, batch: dict, labelled: bool):
        if self.mode == "semi" and labelled:
            if "sup_image" not in batch:
                raise UserError("model.mode semi needs the datamodule's labelled stream (sup_image, sup_view, "
                                "sup_label): use datamodules.semi.SemiMultiDomainFolders or "
                                "datamodules.builtin_multidomain.BuiltinMultiDomain with 0 < label_fraction < 1")
            x, v, y = batch["sup_image"], batch["sup_view"], batch["sup_label"]
        else:
            x, v, y = batch["image"], batch.get("view"), batch.get("label")
        if v is None:
            raise UserError("TUNIT needs a second augmented view of each image: set data.init_args.second_view true")
        if v.shape != x.shape:
            raise UserError(f"the second views are {tuple(v.shape)} but the images {tuple(x.shape)}: the data's view "
                            "augmentation must give the images' size")
        if x.shape[-1] != self.hparams.img_size or x.shape[-2] != self.hparams.img_size:
            raise UserError(f"the data's images are {x.shape[-1]}x{x.shape[-2]}, but model.img_size is "
                            f"{self.hparams.img_size} (the discriminator is built for that size); set "
                            f"--model.init_args.img_size {x.shape[-1]} or the data's crop_size")
        if labelled:
            y = torch.as_tensor(y, device=x.device).long()
            if (y < 0).any() or (y >= self.hparams.n_clusters).any():
                raise UserError(f"mode {self.mode}: labelled iterations need labels in [0, {self.hparams.n_clusters}), "
                                "got -1 or larger (set data.labelled true / label_fraction)")
        return x, v, y

    def training_step(self, batch, batch_idx):
        h, it = self.hparams, self.iteration
        labelled = self.labelled_iteration(it)
        x, x_tf, y_true = self._inputs(batch, labelled)
        n = len(x)
        perm = torch.randperm(n).to(x.device)  # x_ref = x[perm], drawn every iteration as the official loop
        gan = it >= self.separated
        train_E = h.joint or not gan
        if it == self.ema_start:
            self.G_ema.load_state_dict(self.G.state_dict())
        with torch.no_grad():
            if len(self.queue) == 0:
                self.queue.enqueue(gather_ranks(self.E_ema.style(x)))
            k = self.E_ema.style(x_tf)  # keys of the views (E_ema in training mode, as the official C_EMA)
        losses: dict[str, torch.Tensor] = {}
        # ---- E step: the guiding network's own loss
        with torch.set_grad_enabled(train_E):
            out = self.E(x)
            logits_tf = self.E.logits(x_tf) if self.mode != "supervised" else None
            losses["moco"] = info_nce(out["style"], k, self.queue.get(), h.temperature)
            if self.mode == "supervised":
                loss_E, scale = h.w_moco * losses["moco"], h.guide_scale
            elif labelled:
                losses["ce"] = F.cross_entropy(out["logits"].float(), y_true) + F.cross_entropy(logits_tf.float(), y_true)
                loss_E, scale = h.w_moco * losses["moco"] + h.w_ce * losses["ce"], h.guide_scale if gan else 1.0
            else:
                losses["iic"] = iic_loss(out["logits"].softmax(1), logits_tf.softmax(1))
                loss_E = h.w_moco * losses["moco"] + h.w_iic * losses["iic"]
                scale = h.guide_scale if gan or self.mode == "semi" else 1.0
            losses["E"] = scale * loss_E
        if train_E:
            self.step("E", losses["E"])
        y_pre = y_true if labelled else out["logits"].detach().argmax(1)
        if gan:
            losses.update(self.gan_steps(x, perm, y_pre if labelled or self.mode == "semi" else None, train_E))
        # ---- bookkeeping of the iteration (before the checkpoint of this batch)
        keys, ys = gather_ranks(k), gather_ranks(y_pre)
        self.update_clusters(keys, ys, x, out["logits"].detach())
        self.queue.enqueue(keys)
        ema_(self.E_ema, self.E, h.ema_beta)
        if it >= self.ema_start:
            ema_(self.G_ema, self.G, h.ema_beta)
        self.log_losses(losses, prog_bar=("E", "G", "D"))

    def gan_steps(self, x: torch.Tensor, perm: torch.Tensor, y: torch.Tensor | None, train_E: bool) -> dict:
        """D step then the G step (into G and, unless ``train_E`` is off, E). ``y``: the labels (true,
        or the semi loop's pre-step pseudo-labels); None: pseudo-labels from E after its step
        (``train_unsupervised``)."""
        h = self.hparams
        fb = self.feedback if train_E else ()
        with torch.set_grad_enabled(train_E and bool(fb)):
            e = self.E(x)
        if y is None:
            y = e["logits"].detach().argmax(1)
        y_ref = y[perm]
        s_src = e["style"]
        s_ref = s_src[perm]
        c = self.G.encode(x)
        fake, rec = self.G.decode(c, s_ref), self.G.decode(c, s_src)
        # D step: real = x_ref with the references' labels, fake = G(x, s(x_ref))
        x_ref = x[perm].detach().requires_grad_(True)
        d_real = self.D(x_ref, y_ref)
        d = {"D_real": self.gan(d_real, True), "D_fake": self.gan(self.D(fake.detach(), y_ref), False),
             "r1": self.r1(d_real, x_ref)}
        d["D"] = d["D_real"] + d["D_fake"] + d["r1"]
        self.step("D", d["D"])
        # G step: D frozen, the loss into G and E
        with frozen(self.D):
            g = {"adv": self.gan(self.D(fake, y_ref), True, for_discriminator=False)
                 + self.gan(self.D(rec, y), True, for_discriminator=False)}
        g["rec"] = recon_loss(rec, x)
        with torch.no_grad():
            k_ref = self.E_ema.style(x)[perm]
        with frozen(self.E) if not train_E else torch.enable_grad():
            g["style"] = info_nce(self.E.style(fake), k_ref, self.queue.get(), h.temperature)
        w = {"adv": h.w_adv, "rec": h.w_rec, "style": h.w_vec}
        terms = {t: w[t] * g[t] for t in FEEDBACK}
        g["G"] = sum(terms.values())
        if not train_E:
            self.step("G", g["G"])
        elif set(fb) == set(FEEDBACK):
            self.joint_step(("E", "G"), g["G"])
        else:
            fed = sum((terms[t] for t in fb), torch.zeros((), device=x.device))
            self.joint_step(("E", "G"), fed, sum(terms[t] for t in FEEDBACK if t not in fb))
        return {**d, **g}

    def r1(self, d_real: torch.Tensor, x_real: torch.Tensor) -> torch.Tensor:
        """The official ``w_gp * compute_grad_gp``: w_gp * sum ||d D(x)/d x||^2 / N (``x_real`` requires grad)."""
        return r1_penalty(d_real, x_real, gamma=2 * self.hparams.w_gp)

    @torch.no_grad()
    def update_clusters(self, keys: torch.Tensor, labels: torch.Tensor, x: torch.Tensor, logits: torch.Tensor) -> None:
        """Running per-cluster means of the key encoder's codes (``cluster_momentum`` per iteration) and,
        per cluster, the most confident recent image of this rank's batch (its score decays by 0.995)."""
        m = self.hparams.cluster_momentum
        onehot = F.one_hot(labels.long(), self.hparams.n_clusters).to(keys.dtype)
        self.cluster_sum.mul_(m).add_(onehot.t() @ keys.float())
        self.cluster_n.mul_(m).add_(onehot.sum(0))
        prob = logits.float().softmax(1)
        score, idx = prob.max(0)
        self.cluster_rep_score.mul_(0.995)
        better = score >= self.cluster_rep_score
        self.cluster_rep[better] = x[idx[better]].detach().to(self.cluster_rep)
        self.cluster_rep_score[better] = score[better]

    # ------------------------------------------------------------------ inference
    def translator(self) -> nn.Module:
        """G_ema once it has started, else G."""
        return self.G_ema if self.iteration > self.ema_start else self.G

    @torch.no_grad()
    def style_of(self, images: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.E_ema):
            return self.E_ema.style(images)

    @torch.no_grad()
    def cluster(self, x: torch.Tensor) -> torch.Tensor:
        """Cluster index of each image: argmax of E's cluster head (eval mode)."""
        with eval_mode(self.E):
            return self.E.logits(x).argmax(1)

    def cluster_style(self, k: int) -> torch.Tensor:
        if not 0 <= k < self.hparams.n_clusters:
            raise UserError(f"--mode cluster:{k}: this model has clusters 0 ... {self.hparams.n_clusters - 1}")
        if float(self.cluster_n[k]) <= 0:
            raise UserError(f"cluster {k} has no style yet (no image was assigned to it)")
        return self.cluster_sum[k] / self.cluster_n[k]

    @torch.no_grad()
    def set_cluster_styles(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Per-cluster mean style codes from ``images`` (clusters from E, codes from E_ema, eval mode), as
        the official validation's average-style grids; replaces the running means. Returns the counts."""
        codes, labels = [], []
        for i in range(0, len(images), batch_size):
            xb = images[i:i + batch_size].to(self.device)
            codes.append(self.style_of(xb))
            labels.append(self.cluster(xb))
        codes, labels = torch.cat(codes), torch.cat(labels)
        onehot = F.one_hot(labels, self.hparams.n_clusters).to(codes.dtype)
        self.cluster_sum.copy_(onehot.t() @ codes)
        self.cluster_n.copy_(onehot.sum(0))
        return self.cluster_n.clone()

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str | None = None, reference: torch.Tensor | None = None,
                  mode: str | None = None) -> torch.Tensor:
        """``reference``: the style of each reference image (one reference is used for every source);
        ``mode="cluster:k"``: the mean style of cluster k. ``direction`` is ignored (the target is the
        reference's or the cluster's)."""
        if mode is not None:
            name, _, arg = mode.partition(":")
            if name != "cluster" or not arg.lstrip("-").isdigit():
                raise UserError(f"--mode: TUNIT knows cluster:K (the mean style of cluster K), not {mode!r}")
            s = self.cluster_style(int(arg)).to(x.device).expand(len(x), -1)
        elif reference is not None:
            if len(reference) not in (1, len(x)):
                raise UserError(f"{len(reference)} references for {len(x)} images: give one, or one per image")
            s = self.style_of(reference.to(x.device)).expand(len(x), -1)
        else:
            raise UserError("TUNIT translates with a reference (reference=..., --reference, --metrics.reference true) "
                            "or a cluster's mean style (--mode cluster:K)")
        g = self.translator()
        with eval_mode(g):
            return g(x, s)

    @torch.no_grad()
    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        """Row 0: the references / each cluster's representative; rows 1+: the sources. Columns: the
        sources, one per reference (source x reference matrix), one per cluster (its mean style)."""
        x = batch["image"]
        refs = x[: min(len(x), 6)]
        blank = torch.ones_like(x[:1])
        vis = {"source": torch.cat([blank, x])}
        for j, r in enumerate(refs):
            vis[f"ref {j}"] = torch.cat([r[None], self.translate(x, reference=r[None])])
        for k in range(self.hparams.n_clusters):
            if float(self.cluster_n[k]) > 0:
                rep = self.cluster_rep[k:k + 1].to(x) if float(self.cluster_rep_score[k]) > 0 else blank
                vis[f"cluster {k}"] = torch.cat([rep, self.translate(x, mode=f"cluster:{k}")])
        return vis
