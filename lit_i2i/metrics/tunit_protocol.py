"""TUNIT's own class-wise mean FID protocol (clovaai/tunit@405a77c ``validation/validation.py``
``calcFIDBatch``, ``models/inception.py``; the maintainers' note in tunit issue 25), beside the same
sampling with standard torch-fidelity features. Every number says which protocol made it.

Sampling (both protocols), for a model with ``translate(x, reference=r)`` and multi-domain data whose
domains are the classes (``dm.domains``, ``dm.eval_dataset(domain, split)``):
  - per class, the real statistics come from its *training* images (``real_split``; all of them, as
    for AnimalFaces, or the first ``max_real``);
  - n_target = (smallest + largest training class) // 2; draws = max(1, 50 // K) style draws (5 for
    K = 10); n_each = (n_target // draws) // (K - 1);
  - the fakes of target class i: the first n_each held-out images (``held_split``) of each of the K - 1
    other classes as content, each translated with the style of one of n_each held-out images of
    class i drawn at random (one draw of n_each per style draw; content k with style k), at most
    n_target fakes;
  - FID per class (Gaussian fit, ``scores.fid``), mFID = their mean.

Features:
  - ``official``: the official pipeline: images to [0, 1], ImageNet mean/std normalisation, a
    nearest-neighbour resize to 299, then the pytorch-fid wrapper's own ``2x - 1``, into the FID
    Inception weights (pt_inception-2015-12-05, the network torch-fidelity ships) up to its 2048-d pool.
    Not standard FID (the normalisation is applied twice); comparable with the paper's numbers only.
  - ``torch-fidelity``: the suite's :class:`~lit_i2i.metrics.extractors.InceptionExtractor` (uint8
    input, TF-compatible bilinear resize): standard FID features on the same samples.
  - or any callable ``images in [-1, 1] -> (N, d)`` (e.g. the built-in digit classifier's features).

The paper reports, per the maintainers, the mean of the 5 best mFIDs seen during training:
:class:`TunitMFID` evaluates during fit and logs both the latest value and that mean.

Departures: style draws and content selection use a private seeded generator (repeatable; the
official draws from the global RNG); the held-out images go through the evaluation transform (the
official passes them through its training transform, random flip included); the official code runs
this only for its labelled sets (AnimalFaces, Food), here it runs on any multi-domain data.
"""

from __future__ import annotations

import math
from typing import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from lit_i2i.errors import UserError
from lit_i2i.metrics import scores
from lit_i2i.metrics.extractors import IMAGENET_MEAN, IMAGENET_STD

PROTOCOLS = ("official", "torch-fidelity")
_INCEPTION_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                     "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool")


def official_preprocess(x: torch.Tensor) -> torch.Tensor:
    """The official FID input: [-1, 1] -> [0, 1] -> ImageNet-normalised -> nearest resize 299 -> 2x - 1."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    x = x.float().expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.float()
    z = ((x + 1) / 2 - mean) / std
    z = F.interpolate(z, size=(299, 299))  # mode "nearest", as validation.py
    return 2 * z - 1  # pytorch-fid InceptionV3(normalize_input=True); its bilinear resize to 299 is a no-op


class OfficialInception(torch.nn.Module):
    """The FID Inception (torch-fidelity's copy of the weights) fed with :func:`official_preprocess`."""

    num_features = 2048

    def __init__(self, weights: str | None = None, net: torch.nn.Module | None = None):
        super().__init__()
        if net is None:
            from torch_fidelity.feature_extractor_inceptionv3 import (
                FeatureExtractorInceptionV3,
            )

            from lit_i2i.metrics.weights import inception_spec, resolve_weights

            path = resolve_weights(inception_spec(), weights)
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
        self.net = net.eval().requires_grad_(False)
        self.name = "tunit-official-inception-2048"

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = official_preprocess(x)
        for name in _INCEPTION_LAYERS:
            z = getattr(self.net, name)(z)
        return torch.flatten(z, 1).float()


def extractor_for(protocol: str, weights: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    if protocol == "official":
        return OfficialInception(weights)
    if protocol == "torch-fidelity":
        from lit_i2i.metrics.extractors import InceptionExtractor

        net = InceptionExtractor(weights)
        return lambda x: net(x)["features"]
    raise UserError(f"TUNIT mFID protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def _images(ds, n: int | None = None) -> torch.Tensor:
    n = len(ds) if n is None else min(n, len(ds))
    return torch.stack([ds[i]["image"] for i in range(n)])


@torch.no_grad()
def _features(extract, images: torch.Tensor, device, batch_size: int) -> torch.Tensor:
    return torch.cat([extract(images[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)])


@torch.no_grad()
def tunit_mfid(model, dm, extract: Callable[[torch.Tensor], torch.Tensor], protocol: str = "official",
               real_split: str = "train", held_split: str = "test", max_real: int | None = None,
               draws: int | None = None, seed: int = 0, batch_size: int = 50, device=None) -> dict:
    """Class-wise mean FID by TUNIT's sampling (see the module docstring) with features ``extract``.

    Returns ``{"mfid": float, "fid_per_class": {domain: float}, "protocol": str, "n_fake": int,
    "n_each": int, "draws": int}``."""
    domains = list(getattr(dm, "domains", ()))
    k = len(domains)
    if k < 2:
        raise UserError("TUNIT's mFID needs at least 2 classes (the content comes from the other classes)")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was = model.training
    model.eval()
    try:
        sizes = {d: len(dm.eval_dataset(d, real_split)) for d in domains}
        n_target = (min(sizes.values()) + max(sizes.values())) // 2
        draws = draws or max(1, 50 // k)
        n_each = (n_target // draws) // (k - 1)
        held = {d: _images(dm.eval_dataset(d, held_split)) for d in domains}
        n_each = min([n_each] + [len(h) for h in held.values()])
        if n_each < 1:
            raise UserError(f"TUNIT's mFID: too few images ({n_target} per class on average, {draws} style draws, "
                            f"{k - 1} content classes)")
        g = torch.Generator().manual_seed(seed)
        out = {}
        for i, d in enumerate(domains):
            real = _features(extract, _images(dm.eval_dataset(d, real_split), max_real), device, batch_size)
            styles = [held[d][torch.randperm(len(held[d]), generator=g)[:n_each]] for _ in range(draws)]
            fakes = []
            for j in range(k - 1):
                content = held[domains[(i + j + 1) % k]][:n_each].to(device)
                for s in styles:
                    fakes.append(model.translate(content, reference=s.to(device)).float().clamp(-1, 1).cpu())
            fake = torch.cat(fakes)[:n_target]
            out[d] = scores.fid(real, _features(extract, fake, device, batch_size))
    finally:
        model.train(was)
    return {"mfid": float(sum(out.values()) / k), "fid_per_class": out, "protocol": protocol,
            "n_fake": int(min(n_target, (k - 1) * n_each * draws)), "n_each": int(n_each), "draws": int(draws)}


def best_mean(history: list[float], n: int = 5) -> float:
    """The mean of the ``n`` lowest values (fewer while fewer exist); NaN for none."""
    vals = sorted(v for v in history if not math.isnan(v))[:n]
    return float(sum(vals) / len(vals)) if vals else float("nan")


class TunitMFID(pl.Callback):
    """TUNIT's mFID during fit, every ``every_n_epochs`` validation epochs (from ``start_iteration``):
    logs ``val/mfid_tunit_<protocol>`` and ``val/mfid_tunit_<protocol>_best5`` (the mean of the 5 best
    so far, what the paper reports). The history is in the callback's state (checkpointed).

    Args:
        protocol: ``official`` or ``torch-fidelity`` (see the module docstring).
        inception_weights: the FID Inception weights file (else the usual search, see ``metrics.weights``).
        every_n_epochs, start_iteration, max_real, draws, seed, batch_size: as :func:`tunit_mfid`.
    """

    def __init__(self, protocol: str = "official", inception_weights: str | None = None, every_n_epochs: int = 1,
                 start_iteration: int = 0, max_real: int | None = None, draws: int | None = None, seed: int = 0,
                 batch_size: int = 50, best_of: int = 5):
        if protocol not in PROTOCOLS:
            raise UserError(f"TunitMFID.protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        self.protocol, self.weights = protocol, inception_weights
        self.every_n_epochs, self.start_iteration = max(1, every_n_epochs), start_iteration
        self.max_real, self.draws, self.seed, self.batch_size, self.best_of = max_real, draws, seed, batch_size, best_of
        self.history: list[float] = []
        self._extract = None
        self.results: dict[str, float] = {}

    def extractor(self):
        if self._extract is None:
            self._extract = extractor_for(self.protocol, self.weights)
        return self._extract

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        if getattr(pl_module, "iteration", 0) < self.start_iteration:
            return
        r = tunit_mfid(pl_module, trainer.datamodule, self.extractor(), self.protocol, max_real=self.max_real,
                       draws=self.draws, seed=self.seed, batch_size=self.batch_size, device=pl_module.device)
        self.history.append(r["mfid"])
        name = f"val/mfid_tunit_{self.protocol.replace('-', '_')}"
        self.results = {name: r["mfid"], f"{name}_best{self.best_of}": best_mean(self.history, self.best_of)}
        for key, v in self.results.items():
            pl_module.log(key, v, on_step=False, on_epoch=True, sync_dist=False, rank_zero_only=True)

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state.get("history", []))
