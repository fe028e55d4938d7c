"""The metrics, as functions of features, logits and labels (no networks, no data, no devices).

  - :func:`fid`: Frechet distance between Gaussians fitted to real and fake features (Heusel et al.
    2017), computed by torchmetrics' ``FrechetInceptionDistance`` (float64 states). The features come
    in through a pass-through module, because real features come from the on-disk cache.
  - :func:`kid`: Kernel Inception Distance (Binkowski et al. 2018) as torchmetrics'
    ``KernelInceptionDistance`` computes it: unbiased MMD^2 with the cubic polynomial kernel, mean and
    std over ``subsets`` random subsets of ``subset_size = min(1000, n_real, n_fake)`` samples (the
    reported subset size; 1000 is torchmetrics' and torch-fidelity's default). Seeded with a private
    generator (the global and CUDA RNGs are not touched), so repeatable. When the subset size equals
    both sample counts every subset is the whole set, the std is not an estimate of anything and is
    reported as NaN (unavailable), not 0.
  - :func:`class_wise_fid` (mFID, as FUNIT/TUNIT/StarGAN v2): FID per *target* class (fakes grouped
    by the class they were translated to, reals by their label), averaged over the classes with >= 2
    samples on both sides. The evaluator decides each fake's target class (see ``evaluate``).
  - :func:`translation_accuracy`: a target-domain classifier on translations vs the source labels
    (OST Fig. 3 / Table 1, UNIT, DIDD's digit adaptation); labels -1 are left out.
  - :func:`attribute_scores`: mean probability of the target attribute and share classified as it
    (Press et al. Table 4 reports P(B) after B->A, i.e. ``1 - attr_prob_BtoA``; DIDD Table 1 and MBU
    Table 6 "Class." report ``attr_success``). The classifier's output shape decides how: one logit
    (sigmoid), two logits (softmax), or a multi-label head with the attribute's column given.
  - :func:`content_distance`, :func:`style_distance`: OST Tables 2-3. Content = perceptual distance
    between input and output (mean squared difference of VGG relu4_2 activations, per image,
    averaged); style = distance between the average Gram matrix of translations and that of target
    images (sum over relu1_1..relu5_1 of the Frobenius norm of the difference; Gram normalised by
    C*H*W). The OST paper does not publish its exact layers or normalisation, so absolute values are
    this suite's own and comparable between its runs, not with the paper's numbers.
  - :func:`cluster_accuracy` (best one-to-one cluster->class map, Hungarian algorithm), :func:`nmi`,
    :func:`ari` (scikit-learn): TUNIT's guiding-network clustering.
  - :func:`psnr`, :func:`ssim`: per-image torchmetrics values on [0, 1] images, averaged (paired data).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

KID_SUBSET_SIZE = 1000
KID_SUBSETS = 100


class PassThrough(nn.Module):
    """The 'feature extractor' handed to torchmetrics: features in, the same features out."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _check(real: torch.Tensor, fake: torch.Tensor, what: str) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"{what}: expected (N, d) real and fake features, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"{what} needs at least 2 real and 2 fake samples, got {len(real)} and {len(fake)}")


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two sets of features (N, d), torchmetrics' computation in float64."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check(real, fake, "FID")
    if not (torch.isfinite(real).all() and torch.isfinite(fake).all()):
        # LAPACK's eigvals (torchmetrics' matrix square root) can crash the process on NaN/inf input
        # (seen with a diverged 4-step run), so a non-finite feature gives NaN instead.
        return float("nan")
    m = FrechetInceptionDistance(feature=PassThrough(real.shape[1]), sync_on_compute=False)
    m.update(real.detach().cpu().double(), real=True)
    m.update(fake.detach().cpu().double(), real=False)
    return float(m.compute())


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0) -> tuple[float, float, int]:
    """(KID mean, KID std, subset size used), with ``subset size = min(subset_size, n_real, n_fake)``.

    torchmetrics' ``KernelInceptionDistance`` with its subsets drawn from a CPU generator seeded by
    ``seed`` (the same draws as the global generator seeded so). Up to :data:`KID_FAST_MAX` samples per
    set the same subsets are scored from kernel matrices computed once (:func:`_kid_from_kernels`, equal
    to torchmetrics' loop to float64 rounding, ~30x faster). The std is NaN when every subset is the
    whole of both sets (subset size = n_real = n_fake).
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    _check(real, fake, "KID")
    real, fake = real.detach().cpu().double(), fake.detach().cpu().double()
    size = int(min(subset_size, len(real), len(fake)))
    if max(len(real), len(fake)) <= KID_FAST_MAX:
        mean, std = _kid_from_kernels(real, fake, subsets, size, torch.Generator().manual_seed(seed))
    else:  # torchmetrics draws from the global CPU generator: seed it alone and restore it afterwards
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
                m = KernelInceptionDistance(feature=PassThrough(real.shape[1]), subsets=subsets, subset_size=size,
                                            sync_on_compute=False)
            m.update(real, real=True)
            m.update(fake, real=False)
            mean, std = m.compute()
    std = float(std) if not size == len(real) == len(fake) else float("nan")
    return float(mean), std, size


KID_FAST_MAX = 5000


def _kid_from_kernels(real: torch.Tensor, fake: torch.Tensor, subsets: int, m: int,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """torchmetrics' KID (cubic polynomial kernel, unbiased MMD^2, the same ``torch.randperm`` draws in
    the same order) with the kernels computed once on all samples and each subset's sums taken from them."""
    from torchmetrics.image.kid import poly_kernel

    draws = [(torch.randperm(len(real), generator=generator)[:m], torch.randperm(len(fake), generator=generator)[:m])
             for _ in range(subsets)]
    sel_r = torch.zeros(subsets, len(real), dtype=torch.float64)
    sel_f = torch.zeros(subsets, len(fake), dtype=torch.float64)
    for i, (pr, pf) in enumerate(draws):
        sel_r[i, pr], sel_f[i, pf] = 1.0, 1.0
    k_rr, k_ff, k_rf = poly_kernel(real, real), poly_kernel(fake, fake), poly_kernel(real, fake)

    def within(sel, k):  # sum of a subset's kernel block without its diagonal
        return ((sel @ k) * sel).sum(1) - sel @ torch.diagonal(k)

    mmd = (within(sel_r, k_rr) + within(sel_f, k_ff)) / (m * (m - 1)) - 2 * ((sel_r @ k_rf) * sel_f).sum(1) / m**2
    return mmd.mean(), mmd.std(unbiased=False)


def class_wise_fid(real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor,
                   fake_labels: torch.Tensor) -> tuple[float, int]:
    """(mean of per-class FIDs, number of classes used); ``fake_labels`` are the fakes' *target*
    classes; a class needs >= 2 samples on both sides."""
    values = []
    for c in sorted(set(real_labels.tolist()) & set(fake_labels.tolist())):
        if c < 0:
            continue
        r, f = real[real_labels == c], fake[fake_labels == c]
        if len(r) >= 2 and len(f) >= 2:
            values.append(fid(r, f))
    return (float(np.mean(values)) if values else float("nan")), len(values)


def translation_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
    """(share of translations the target classifier labels as their source label, n labelled).

    Counted exactly (correct / n) rather than with torchmetrics' float32 accuracy.
    """
    keep = labels >= 0
    n = int(keep.sum())
    if n == 0:
        return float("nan"), 0
    return int((logits[keep].argmax(1) == labels[keep]).sum()) / n, n


def image_colours(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(background, foreground) RGB in [0, 1], each (N, 3), of images (N, 3, H, W) in [-1, 1]: the
    median of the 2-pixel border, and the mean of the 15% of pixels farthest from it (L1 in RGB)."""
    x = ((img.float() + 1) / 2).clamp(0, 1)
    n, c, h, w = x.shape
    border = torch.ones(h, w, dtype=torch.bool, device=x.device)
    border[2:-2, 2:-2] = False
    bg = x[:, :, border].median(dim=2).values
    flat = x.flatten(2)
    k = max(1, int(0.15 * h * w))
    idx = (flat - bg[:, :, None]).abs().sum(1).topk(k, dim=1).indices
    fg = torch.gather(flat, 2, idx[:, None, :].expand(-1, c, -1)).mean(2)
    return bg, fg


def scheme_scores(img: torch.Tensor, schemes: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: (is the nearest of ``schemes`` the ``target`` one, the colour error to the target).

    ``schemes`` is (K, 2, 3): each scheme's (foreground, background) RGB in [0, 1]. An image's colours
    are :func:`image_colours`; its distance to a scheme is the mean absolute difference of the six
    numbers (background and foreground RGB), which is also the error returned (in [0, 1]).
    """
    bg, fg = image_colours(img)
    have = torch.cat([fg, bg], 1)[:, None, :]  # (N, 1, 6)
    want = schemes.to(have).reshape(1, len(schemes), 6)
    dist = (have - want).abs().mean(2)  # (N, K)
    return (dist.argmin(1) == target).double(), dist[:, target].double()


def attribute_scores(logits: torch.Tensor, target_class: int, index: int | None = None) -> tuple[float, float]:
    """(mean probability that the target-domain attribute value holds, share of images where it does).

    ``logits``: (N,) or (N, 1): one logit of "has the attribute" (sigmoid); (N, 2): two classes
    (softmax, ``target_class`` is the target domain's column); (N, K > 2): a multi-label head (one
    logit per attribute, e.g. CelebA's 40), read at column ``index`` with a sigmoid. For the one-logit
    and multi-label cases ``target_class`` is 1 (the target domain has the attribute) or 0 (it has not).
    Anything else raises ``ValueError`` naming the shape.
    """
    z = logits.float()
    if z.ndim == 2 and z.shape[1] == 2 and index is None:
        p = z.softmax(1)[:, target_class]
    else:
        if z.ndim == 2 and z.shape[1] == 1:
            z = z[:, 0]
        elif z.ndim == 2 and z.shape[1] > 2:
            if index is None or not 0 <= index < z.shape[1]:
                raise ValueError(f"an attribute classifier with {z.shape[1]} outputs is a multi-label head: give the "
                                 f"attribute's column (index 0..{z.shape[1] - 1}), got {index}")
            z = z[:, index]
        elif z.ndim != 1:
            raise ValueError(f"attribute classifier output of shape {tuple(logits.shape)}: expected (N,), (N, 1), "
                             "(N, 2) or (N, K) logits")
        if target_class not in (0, 1):
            raise ValueError(f"a one-logit or multi-label attribute classifier needs target class 0 or 1, "
                             f"got {target_class}")
        p = z.sigmoid() if target_class == 1 else 1 - z.sigmoid()
    return float(p.mean()), float((p > 0.5).float().mean())


def content_distance(feat_in: torch.Tensor, feat_out: torch.Tensor) -> torch.Tensor:
    """Per-image perceptual distance: mean squared difference of the two images' activations."""
    return (feat_in.double() - feat_out.double()).pow(2).flatten(1).mean(1)


def style_distance(mean_grams_a: dict[str, torch.Tensor], mean_grams_b: dict[str, torch.Tensor]) -> float:
    """Sum over layers of the Frobenius norm between two sets' average Gram matrices."""
    return float(sum(torch.linalg.matrix_norm(mean_grams_a[k].double() - mean_grams_b[k].double())
                     for k in mean_grams_a))


def _labels(x) -> np.ndarray:
    return np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x).astype(np.int64).ravel()


def cluster_accuracy(pred, true) -> float:
    """Accuracy under the best one-to-one map of predicted clusters to classes (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    p, t = _labels(pred), _labels(true)
    if len(p) == 0:
        return float("nan")
    pu, pi = np.unique(p, return_inverse=True)
    tu, ti = np.unique(t, return_inverse=True)
    counts = np.zeros((len(pu), len(tu)), dtype=np.int64)
    np.add.at(counts, (pi, ti), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(p))


def nmi(pred, true) -> float:
    """Normalised mutual information (scikit-learn, arithmetic mean normalisation)."""
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(_labels(true), _labels(pred)))


def ari(pred, true) -> float:
    """Adjusted Rand index (scikit-learn)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(_labels(true), _labels(pred)))


def psnr(fake01: torch.Tensor, real01: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of [0, 1] images (torchmetrics, data_range 1)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(fake01.float(), real01.float(), data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(fake01: torch.Tensor, real01: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of [0, 1] images (torchmetrics: Gaussian 11x11 window, sigma 1.5, data_range 1)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(fake01.float(), real01.float(), data_range=1.0, reduction="none")
