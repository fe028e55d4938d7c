"""Diversity of multimodal translations: the mean pairwise LPIPS distance among K outputs of one input
translated with K different random styles (MUNIT, DRIT/DRIT++, StarGAN v2, after BicycleGAN).

Protocols (each paper's own): BicycleGAN, MUNIT and DRIT average the LPIPS distance of 19 pairs of
outputs per input over 100 inputs [recalled from the papers' text, not checked];
StarGAN v2 (``metrics/eval.py`` ``calculate_lpips_given_images``) the distance over all K(K-1)/2
pairs of K = 10 outputs per input, averaged over inputs. For outputs drawn independently both estimate the
same expectation E[d(G(x, s1), G(x, s2))]; ``pairs="all"`` is StarGAN v2's estimator, ``pairs="disjoint"``
uses each output in one pair only ((0, 1), (2, 3), ...: K = 38 gives MUNIT's 19 independent pairs).
The distance is AlexNet-LPIPS (the ``lpips`` package's v0.1 linear layers, as torchmetrics ships
them, on images in [-1, 1]; grey images repeated to 3 channels).

How outputs are drawn: by default ``model.translate(x, direction, mode="random", seed=seed + k)`` for
k = 0..K-1 (MUNIT's door; a method with another door passes ``sample=lambda x, k: ...``). Weights:
torchvision's AlexNet ImageNet weights, resolved as every suite weight file (the torch hub cache, a
download when ``download`` and the network answer); when they are missing, :func:`lpips_distance`
raises a :class:`~lit_i2i.errors.UserError` that says where to put the file. Tests inject their own
``distance`` (any callable (x, y) -> per-image distances) and never download.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lit_i2i.errors import UserError

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def lpips_distance(device: torch.device | str = "cpu", download: bool = True) -> Distance:
    """AlexNet-LPIPS as a callable (x, y) -> (N,) on images in [-1, 1]; a UserError when the AlexNet
    weights are not available (and cannot be downloaded)."""
    from lit_i2i.metrics.weights import resolve_weights, torchvision_spec

    try:
        resolve_weights(torchvision_spec("alexnet"), download=download)  # into the hub cache torchvision reads
    except UserError as e:
        raise UserError(f"LPIPS diversity needs AlexNet weights: {e}") from None
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    net = LearnedPerceptualImagePatchSimilarity(net_type="alex").net.eval().to(device)

    def lpips_alex(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return net(_rgb(x).float(), _rgb(y).float(), normalize=False).reshape(-1)
    return lpips_alex


def l1_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute pixel difference per image (a weight-free stand-in; not LPIPS: say so with any number)."""
    return (x.float() - y.float()).abs().flatten(1).mean(1)


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def pair_indices(k: int, pairs: str = "all") -> list[tuple[int, int]]:
    if k < 2:
        raise UserError(f"diversity needs at least 2 outputs per input, got k={k}")
    if pairs == "all":
        return [(i, j) for i in range(k) for j in range(i + 1, k)]
    if pairs == "disjoint":
        return [(i, i + 1) for i in range(0, k - 1, 2)]
    raise UserError(f"pairs must be 'all' or 'disjoint', got {pairs!r}")


def pairwise_diversity(outputs: torch.Tensor, distance: Distance, pairs: str = "all") -> torch.Tensor:
    """Per-input mean distance among ``outputs`` (K, N, C, H, W): K outputs for each of N inputs -> (N,)."""
    idx = pair_indices(outputs.shape[0], pairs)
    return torch.stack([distance(outputs[i], outputs[j]).reshape(-1).float() for i, j in idx]).mean(0)


@torch.no_grad()
def lpips_diversity(model, x: torch.Tensor, direction: str = "AtoB", k: int = 10, seed: int = 0,
                    distance: Distance | None = None, pairs: str = "all",
                    sample: Callable[[torch.Tensor, int], torch.Tensor] | None = None) -> dict:
    """Diversity of ``model``'s translations of the inputs ``x`` (N, C, H, W in [-1, 1]).

    Returns ``{"diversity": mean over inputs, "per_input": (N,), "k", "pairs", "distance"}``;
    ``distance`` defaults to AlexNet-LPIPS on x's device (:func:`lpips_distance`).
    """
    distance = lpips_distance(x.device) if distance is None else distance
    name = getattr(distance, "__name__", type(distance).__name__)
    sample = sample or (lambda inp, i: model.translate(inp, direction, mode="random", seed=seed + i))
    pair_indices(k, pairs)  # validate before any translation
    outputs = torch.stack([sample(x, i) for i in range(k)])
    per_input = pairwise_diversity(outputs, distance, pairs)
    return {"diversity": float(per_input.mean()), "per_input": per_input, "k": k, "pairs": pairs, "distance": name}
