"""Single-image measures without pretrained networks: how far an image's patch distribution is from a
reference image's (appearance), and how much of another image's layout it keeps (structure). They
measure structural analogy (``methods/structural_analogy.py``), whose paper has no metric code.

Images are float tensors in [-1, 1], (1, C, H, W) or (C, H, W); the output and the reference may
differ in size. Every function is deterministic (its random choices come from a seeded generator).

Appearance (0 for an image against itself, growing as its patches leave the reference's):
  - :func:`swd_pyramid`: sliced Wasserstein distance between the 7x7 patches of each level of the two
    images' Laplacian pyramids (as the progressive-GAN SWD, Karras et al. 2018: binomial 5-tap
    pyramid, 7x7 descriptors, random unit projections, sorted 1-D distances). Departures: one image
    per side, every patch (up to ``max_patches``) instead of 128 random ones per image, and both sets
    normalised with the *reference's* per-channel mean and std (the progressive-GAN code normalises
    each set by its own statistics, which would hide a global colour shift), so the distances are in
    units of the reference's per-channel standard deviation (no x 1e3). Reported per level
    (``swd_<side>``, finest first) and their mean (``swd``).
  - :func:`patch_nn`: nearest-neighbour patch distances both ways at several scales, the measure the
    bidirectional similarity of Simakov et al. (2008) and structural analogy's patch reasoning build
    on: ``coherence`` = mean over the output's patches of the squared distance to the closest patch
    of the reference (every output patch comes from the reference), ``completeness`` = mean over the
    reference's patches of the distance to the closest output patch (the output shows all of the
    reference). Mean squared error per patch element, [-1, 1] scale.
  - :func:`sifid`: single-image FID (Shaham et al., SinGAN 2019): the Frechet distance between the
    64-channel feature vectors at every position of InceptionV3's first max-pool map (torch-fidelity's
    network, input resized to 299). Needs the Inception weights: :func:`sifid_features` finds them by
    the suite's offline rule (``metrics/weights.py``) and returns None when they are not present.

Structure (1 for an image against itself): on the luminance blurred by a Gaussian of ``sigma`` pixels
(the coarse layout, not the texture), :func:`structure_scores` gives the SSIM (``ssim_lowpass``), the
Pearson correlation of the blurred luminances (``corr_lowpass``) and of their Sobel gradient
magnitudes (``corr_edges``; unchanged when a translation inverts the brightness).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _nchw(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().float()
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image, (C, H, W) or (1, C, H, W), got {tuple(x.shape)}")
    return x


def _blur5(x: torch.Tensor) -> torch.Tensor:
    k = _BINOMIAL.to(x)
    k2 = (k[:, None] * k[None, :]).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k2, groups=x.shape[1])


def laplacian_pyramid(x: torch.Tensor, min_side: int = 16) -> list[torch.Tensor]:
    """Laplacian levels, finest first, the last one the low-pass residual (side >= ``min_side``)."""
    x = _nchw(x)
    levels = []
    while min(x.shape[-2:]) // 2 >= min_side:
        low = _blur5(x)[:, :, ::2, ::2]
        up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        levels.append(x - _blur5(up))
        x = low
    levels.append(x)
    return levels


def patches(x: torch.Tensor, size: int = 7, stride: int = 1) -> torch.Tensor:
    """All ``size`` x ``size`` patches of one image as rows: (num_patches, C * size * size)."""
    return F.unfold(_nchw(x), size, stride=stride)[0].T.contiguous()


def _subsample(p: torch.Tensor, n: int | None, gen: torch.Generator) -> torch.Tensor:
    if n is None or len(p) <= n:
        return p
    return p[torch.randperm(len(p), generator=gen)[:n]]


def _quantiles(v: torch.Tensor, n: int) -> torch.Tensor:
    """(n, P) sorted projections -> their values at n evenly spaced quantiles (for unequal set sizes)."""
    v, _ = torch.sort(v, dim=0)
    if len(v) == n:
        return v
    pos = (torch.arange(n, dtype=v.dtype) + 0.5) / n * len(v) - 0.5
    lo = pos.floor().clamp(0, len(v) - 1).long()
    hi = (lo + 1).clamp(max=len(v) - 1)
    w = (pos - lo).clamp(0, 1)[:, None]
    return v[lo] * (1 - w) + v[hi] * w


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_proj: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between two sets of row vectors (mean over random unit
    directions of the 1-D distance between the sorted projections)."""
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(a.shape[1], n_proj, generator=gen, dtype=torch.float64)
    d = d / d.norm(dim=0, keepdim=True)
    pa, pb = a.double() @ d, b.double() @ d
    n = max(len(pa), len(pb))
    return float((_quantiles(pa, n) - _quantiles(pb, n)).abs().mean())


def swd_pyramid(x: torch.Tensor, ref: torch.Tensor, patch: int = 7, min_side: int = 16, max_patches: int = 16384,
                n_proj: int = 256, seed: int = 0) -> dict[str, float]:
    """SWD between the patches of ``x`` and ``ref`` at each Laplacian level (``swd_<side of x's
    level>``, finest first) and their mean (``swd``)."""
    px, pr = laplacian_pyramid(x, min_side), laplacian_pyramid(ref, min_side)
    levels = min(len(px), len(pr))
    px, pr = px[:levels - 1] + [px[-1]], pr[:levels - 1] + [pr[-1]]  # keep both low-pass residuals
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for i, (lx, lr) in enumerate(zip(px, pr)):
        c = lx.shape[1]
        a = _subsample(patches(lx, patch), max_patches, gen)
        b = _subsample(patches(lr, patch), max_patches, gen)
        rb = b.view(len(b), c, -1)
        mean = rb.mean(dim=(0, 2)).repeat_interleave(patch * patch)
        std = rb.std(dim=(0, 2)).clamp_min(1e-8).repeat_interleave(patch * patch)
        out[f"swd_{lx.shape[-1]}"] = sliced_wasserstein((a - mean) / std, (b - mean) / std, n_proj, seed + i)
    out["swd"] = float(np.mean(list(out.values())))
    return out


def _nn_mean(q: torch.Tensor, ref: torch.Tensor, chunk: int = 2048) -> float:
    """Mean over rows of q of the squared distance to the closest row of ref, per element."""
    best = []
    r2 = (ref * ref).sum(1)
    for s in range(0, len(q), chunk):
        c = q[s:s + chunk]
        d = (c * c).sum(1, keepdim=True) - 2 * c @ ref.T + r2[None]
        nearest = ref[d.argmin(1)]
        best.append(((c - nearest) ** 2).sum(1))  # exact (0 for an identical patch)
    return float(torch.cat(best).mean() / q.shape[1])


def patch_nn(x: torch.Tensor, ref: torch.Tensor, patch: int = 7, scales: tuple[float, ...] = (1.0, 0.5, 0.25),
             max_patches: int = 8192, seed: int = 0) -> dict[str, float]:
    """Coherence and completeness of ``x``'s patches against ``ref``'s at each scale (images resized
    by the factor, antialiased), ``coherence_<f>`` / ``completeness_<f>``, and their means over
    scales (``coherence``, ``completeness``)."""
    x, ref = _nchw(x), _nchw(ref)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, float] = {}
    for f in scales:
        xs, rs = (x, ref) if f == 1 else (_resize(x, f), _resize(ref, f))
        if min(*xs.shape[-2:], *rs.shape[-2:]) < patch:
            continue
        a = _subsample(patches(xs, patch), max_patches, gen).double()
        b = _subsample(patches(rs, patch), max_patches, gen).double()
        out[f"coherence_{f:g}"] = _nn_mean(a, b)
        out[f"completeness_{f:g}"] = _nn_mean(b, a)
    for k in ("coherence", "completeness"):
        vals = [v for n, v in out.items() if n.startswith(k + "_")]
        out[k] = float(np.mean(vals)) if vals else math.nan
    return out


def _resize(x: torch.Tensor, f: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="bilinear", antialias=True,
                         align_corners=False)


# ---------------------------------------------------------------------------------- structure
def luminance(x: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) luminance in [0, 1] (Rec. 601 weights; a 1-channel image is its own)."""
    x = ((_nchw(x) + 1) / 2).clamp(0, 1)
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
    return (x[:, :3] * w).sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    kx = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=x.dtype).view(1, 1, 3, 3)
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(xp, kx), F.conv2d(xp, kx.transpose(2, 3))
    return torch.sqrt(gx * gx + gy * gy + 1e-12)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    den = a.norm() * b.norm()
    return float((a * b).sum() / den) if den > 0 else 0.0


def ssim(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004; Gaussian window) of two 1-channel images."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = gaussian_blur(a, sigma), gaussian_blur(b, sigma)
    va = gaussian_blur(a * a, sigma) - mu_a ** 2
    vb = gaussian_blur(b * b, sigma) - mu_b ** 2
    cov = gaussian_blur(a * b, sigma) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))
    return float(s.mean())


def structure_scores(x: torch.Tensor, a: torch.Tensor, sigma: float | None = None) -> dict[str, float]:
    """How much of ``a``'s coarse layout ``x`` keeps (``x`` is resized to ``a``'s size first).
    ``sigma``: the blur in pixels (default: the side / 32)."""
    x, a = _nchw(x), _nchw(a)
    if x.shape[-2:] != a.shape[-2:]:
        x = F.interpolate(x, size=a.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    s = max(a.shape[-2:]) / 32 if sigma is None else sigma
    lx, la = gaussian_blur(luminance(x), s), gaussian_blur(luminance(a), s)
    return {"ssim_lowpass": ssim(lx, la), "corr_lowpass": _corr(lx, la),
            "corr_edges": _corr(sobel_magnitude(lx), sobel_magnitude(la))}


# ---------------------------------------------------------------------------------- SIFID
def frechet_distance(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two sets of row vectors."""
    from scipy import linalg

    a, b = f1.double().numpy(), f2.double().numpy()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


class InceptionPool1:
    """InceptionV3's first max-pool map (64 channels, 73x73 for the 299x299 input): SIFID's features,
    from torch-fidelity's network and its input convention (uint8, TF1-style bilinear resize)."""

    def __init__(self, weights_path: str):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["64"], feature_extractor_weights_path=str(weights_path))
        self.net.eval().requires_grad_(False)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        from lit_i2i.metrics.extractors import to_rgb, to_uint8

        n = self.net
        y = to_uint8(to_rgb(_nchw(x))).float()
        y = interpolate_bilinear_2d_like_tensorflow1x(y, size=(n.INPUT_IMAGE_SIZE, n.INPUT_IMAGE_SIZE), align_corners=False)
        y = (y - 128) / 128
        return n.MaxPool_1(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(y))))


def sifid_features(weights: str | None = None):
    """The SIFID feature map (:class:`InceptionPool1`) when the Inception weights are present (explicit
    path, ``LIT_I2I_INCEPTION_WEIGHTS``, the torch hub cache; never a download here), else None."""
    from lit_i2i.errors import UserError
    from lit_i2i.metrics.weights import inception_spec, resolve_weights

    try:
        return InceptionPool1(str(resolve_weights(inception_spec(), weights, download=False)))
    except UserError:
        return None


def sifid(x: torch.Tensor, ref: torch.Tensor, features) -> float:
    """SIFID of ``x`` against ``ref`` with a spatial feature map ``features`` (image -> (1, C, h, w)):
    the Frechet distance between the C-dimensional vectors at every position."""
    fx, fr = features(x), features(ref)
    return frechet_distance(fx[0].flatten(1).T.cpu(), fr[0].flatten(1).T.cpu())
