"""Frozen feature extractors. Each takes images as the suite holds them (float NCHW in [-1, 1], 1 or 3
channels, any size) and adapts them to what its network expects; each has a ``name`` that identifies
network, weights and version (the real-feature cache is keyed by it).

  - :class:`InceptionExtractor`: torch-fidelity's ``FeatureExtractorInceptionV3``, 2048-d pool
    features, the network of standard FID/KID (Heusel et al. 2017; Binkowski et al. 2018) as
    torch-fidelity and torchmetrics compute them, comparable with published numbers. Input: uint8
    [0, 255] (it resizes to 299x299 itself with TF1-compatible bilinear interpolation).
  - :class:`DigitExtractor`: a built-in digit classifier (:mod:`lit_i2i.metrics.classifier`), its
    64-d penultimate features (``fid_digits``/``kid_digits``) and its logits (``acc``). Input: [-1, 1].
  - :class:`VGGExtractor`: torchvision VGG16/19 with ImageNet weights: content features and Gram
    matrices (OST Tables 2-3). Input: [0, 1] normalised with the ImageNet mean and std. With
    ``weights="random"`` (:data:`RANDOM_WEIGHTS`) it is a randomly initialised VGG instead, the same
    for the same ``seed`` (torchvision's initialisation of an untrained VGG, drawn from its own
    generator): random-feature stand-ins of the perceptual and Gram distances for runs without the
    ImageNet file (the tables' CPU proxies, tests), never comparable with published numbers. Its name
    says ``random`` and the seed, so cached features of the two never mix.

All of them are frozen (``requires_grad_(False)``, ``eval()``, and ``train()`` is a no-op) and are held
by the evaluator, never by a LightningModule: they are in no optimizer and no checkpoint.
Pretrained files are found by :mod:`lit_i2i.metrics.weights` (explicit path, env var, hub cache,
download, else a UserError with instructions).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from lit_i2i.metrics.weights import inception_spec, resolve_weights, torchvision_spec

#: the ``weights`` value (``--metrics.vgg_weights random``) that asks for a seeded random VGG, no file
RANDOM_WEIGHTS = "random"
RANDOM_SEED = 0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] float, clamped."""
    return ((x.float() + 1) / 2).clamp(0, 1)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> uint8 [0, 255], rounded as an image file would store it."""
    return (to_unit(x) * 255).round().to(torch.uint8)


class Frozen(nn.Module):
    """A module that stays in eval mode with no trainable parameters."""

    def freeze(self):
        self.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True):  # noqa: ARG002 - always eval
        return super().train(False)


class InceptionExtractor(Frozen):
    """torch-fidelity InceptionV3 pool features (2048-d): images in [-1, 1] -> (N, 2048)."""

    num_features = 2048

    def __init__(self, weights: str | os.PathLike | None = None, download: bool = True):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = resolve_weights(inception_spec(), weights, download=download)
        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                               feature_extractor_weights_path=str(path))
        self.name = f"inception-v3-torch-fidelity-2048-{path.stem}"
        self.freeze()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": self.net(to_uint8(to_rgb(x)))[0].reshape(len(x), -1).float()}


class DigitExtractor(Frozen):
    """A built-in digit classifier: images in [-1, 1] -> {"features": (N, 64), "logits": (N, k)}."""

    def __init__(self, net: str, seed: int = 0):
        super().__init__()
        from lit_i2i.metrics.classifier import load_digit_classifier

        self.net = load_digit_classifier(net, seed)
        self.num_features = self.net.num_features
        self.name = f"digit-{net}-data{self.net.info['data_version']}-arch{self.net.info['arch_version']}-" \
                    f"seed{seed}-{self.net.weights_hash}"
        self.freeze()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.net.features(x)
        return {"features": f, "logits": self.net.head(f)}


#: layer names of VGG's ``features`` (conv1_1, relu1_1, ..., pool5) per architecture
_VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
CONTENT_LAYER = "relu4_2"  # Gatys et al.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys et al.


def vgg_layer_names(arch: str) -> list[str]:
    names = []
    for b, n in enumerate(_VGG_BLOCKS[arch], 1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """Per-image Gram matrices of (N, C, H, W) features, normalised by C*H*W (Johnson et al. 2016)."""
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w).double()
    return f @ f.transpose(1, 2) / (c * h * w)


def is_random_weights(weights) -> bool:
    """Whether a ``weights`` value asks for the seeded random VGG (:data:`RANDOM_WEIGHTS`)."""
    return isinstance(weights, str) and weights.strip().lower() == RANDOM_WEIGHTS


def random_vgg_features(arch: str, seed: int = RANDOM_SEED) -> nn.Sequential:
    """VGG's conv part initialised as torchvision initialises an untrained VGG (Kaiming normal, fan_out,
    zero biases), from a generator seeded with ``seed``: the same weights for the same seed, whatever
    the global random state (which is left as it was)."""
    from torchvision.models.vgg import cfgs, make_layers

    with torch.random.fork_rng(devices=[]):  # the layers' default init draws from the global generator
        features = make_layers(cfgs[{"vgg16": "D", "vgg19": "E"}[arch]])
    g = torch.Generator().manual_seed(seed)
    for m in features:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
            nn.init.zeros_(m.bias)
    return features


class VGGExtractor(Frozen):
    """VGG16/19 (ImageNet) activations at named layers: images in [-1, 1] -> {layer: (N, C, H, W)}.

    ``weights``: the ImageNet file (else found by :func:`resolve_weights`), or ``"random"``: a randomly
    initialised VGG from ``seed`` (:func:`random_vgg_features`; no file at all), named
    ``<arch>-random-seed<seed>``.
    """

    def __init__(self, arch: str = "vgg19", weights: str | os.PathLike | None = None,
                 layers: tuple[str, ...] = (CONTENT_LAYER, *STYLE_LAYERS), download: bool = True,
                 seed: int = RANDOM_SEED):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        if arch not in _VGG_BLOCKS:
            from lit_i2i.errors import UserError

            raise UserError(f"--metrics.vgg: unknown VGG {arch!r}; choose vgg16 or vgg19")
        self.random = is_random_weights(weights)
        if self.random:
            features = random_vgg_features(arch, seed)
            self.name = f"{arch}-random-seed{seed}"  # never the ImageNet name: cached real features do not mix
        else:
            features = make_layers(cfgs[{"vgg16": "D", "vgg19": "E"}[arch]])  # VGG's conv part only
            path = resolve_weights(torchvision_spec(arch), weights, download=download)
            state = torch.load(path, map_location="cpu", weights_only=True)
            features.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")})
            self.name = f"{arch}-imagenet-{path.stem}"
        names = vgg_layer_names(arch)
        self.layers = tuple(layers)
        last = max(names.index(layer) for layer in self.layers)
        self.features = features[: last + 1]
        self.names = names[: last + 1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = (to_unit(to_rgb(x)) - self.mean) / self.std
        out = {}
        for name, layer in zip(self.names, self.features, strict=True):
            h = layer(h)
            if name in self.layers:
                out[name] = h.clone() if name.startswith("conv") else h  # the next in-place ReLU would change it
        return out


def vgg_content_and_grams(vgg: VGGExtractor, x: torch.Tensor) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """(content features or None, per-image Gram matrices of the style layers) in one VGG pass."""
    acts = vgg(x)
    grams = {k: gram_matrix(v) for k, v in acts.items() if k in STYLE_LAYERS}
    return acts.get(CONTENT_LAYER), grams

