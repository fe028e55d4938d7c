"""Small CNN classifiers of the built-in digit domains: the evaluator of translation accuracy and the
feature extractor of ``fid_digits`` / ``kid_digits``.

Three networks, one architecture (:class:`DigitClassifier`, ~123k parameters, stored in float16):
  - ``digits``: the 10 digit classes of the white-on-black ``digits`` domain;
  - ``colored-digits``: the 10 digit classes of the SVHN-like ``colored-digits`` domain, trained also
    on ``accessory`` renders, so it reads the digit of every coloured domain (``no-accessory`` renders
    are pixel-identical to ``colored-digits``);
  - ``accessory``: 2 classes, 0 = ``no-accessory``, 1 = ``accessory`` (has the bar or not): the
    attribute classifier of ``attr_prob`` / ``attr_success``.

Protocol (as the OST / DIDD digit experiments: a classifier pretrained on the target domain, applied
to translations of source test images, compared with the source label): train on renders of the
training digits of *both* halves (``indices("all", "train")``) with several render seeds and random
affine jitter; test on ``indices("all", "test")`` rendered with seed 0, the datamodule's default.
:func:`train_digit_classifier` is repeatable given its seed (it trains on one thread, so the float
results do not depend on the core count) and takes under two minutes per network on one CPU core
(AdamW + one-cycle schedule, batch 128, 3-4 epochs of ~6-12k images). The weights it made are shipped as
``lit_i2i/assets/digit-<net>-data<DATA_VERSION>-arch<ARCH_VERSION>-seed<seed>.pt`` (~250 KB each; made
by ``lit-i2i train-classifier --domain all --seed 0 --out lit_i2i/assets``). :func:`load_digit_classifier`
loads the shipped file when its DATA_VERSION matches the renderer's; otherwise (the rendering changed,
or another seed is asked for) it trains one into ``~/.cache/lit_i2i/classifiers`` and says so.
Shipped test accuracies (seed 0): digits 0.9972, colored-digits 0.9875 (colored and accessory
renders), accessory 1.0000 (360 or 720 test images; see each file's ``info``).

Domain classifiers (``domain_rate``, the one-shot benchmark's "B rate"): :func:`domain_net` names a
2-class network of the same architecture for two built-in domains X < Y (sorted), class 0 = X, 1 = Y,
``domain-X-vs-Y``; trained on both domains' training digits (render seed 0) with the same jitter and
noise (so that neither domain is told by the rendering noise alone), never shipped: the first use
trains it into the cache (seconds).

``.features(x)`` is the 64-d penultimate layer (after ReLU); ``forward(x)`` the logits. Inputs are
float NCHW in [-1, 1], 3 channels (1 channel is repeated), any size (resized to 32x32). Feature values
are unnormalised activations, so ``fid_digits``/``kid_digits`` have their own scale: compare them
between runs, never with Inception FID/KID.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.builtin import DATA_VERSION, indices, render
from datamodules.street import STREET_VERSION, cache_root
from lit_i2i.errors import UserError

ARCH_VERSION = 1
ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: real digit datasets (torchvision's files, ``datamodules.digit_datasets``): their classifiers are trained by
#: ``lit-i2i train-classifier --domain svhn --root DIR`` into the cache (never shipped, never trained silently)
REAL = ("mnist", "svhn", "usps")
NUM_CLASSES = {"digits": 10, "colored-digits": 10, "accessory": 2, "street-digits": 10, **{d: 10 for d in REAL}}
#: built-in domain -> the classifier that reads its digit (``acc``, ``fid_digits``, ``kid_digits``);
#: palette-digits' schemes are inside colored-digits' random colours, so that network reads them
#: (0.989 on each half's test split, measured 2026-12-03)
DIGIT_NET_FOR = {"digits": "digits", "colored-digits": "colored-digits", "palette-digits": "colored-digits",
                 "no-accessory": "colored-digits", "accessory": "colored-digits", "street-digits": "street-digits",
                 **{d: d for d in REAL}}
#: built-in domain -> (attribute classifier, the class index meaning "is this domain")
ATTRIBUTE_NET_FOR = {"accessory": ("accessory", 1), "no-accessory": ("accessory", 0)}
#: training recipe per network: render seeds (per domain), epochs
RECIPES = {
    "digits": {"domains": {"digits": [0]}, "repeats": 4, "epochs": 3},
    "colored-digits": {"domains": {"colored-digits": [1, 2, 3, 4, 5, 6], "accessory": [7, 8]},
                       "repeats": 1, "epochs": 4},
    "accessory": {"domains": {"no-accessory": [1, 2, 3], "accessory": [1, 2, 3]}, "repeats": 1, "epochs": 2},
    # generated images: the train and test splits are different images, both rendered with seed 0
    "street-digits": {"domains": {"street-digits": [0]}, "repeats": 1, "epochs": 8},
    **{d: {"domains": {d: [0]}, "repeats": 1, "epochs": 4} for d in REAL},
}


DOMAIN_PREFIX = "domain-"


def domain_net(x: str, y: str) -> str:
    """The name of the A-vs-B domain classifier of built-in domains ``x`` and ``y`` (order-free)."""
    from datamodules.builtin import DOMAINS

    bad = [d for d in (x, y) if d not in DOMAINS]
    if bad or x == y:
        raise UserError(f"a domain classifier needs two different built-in domains ({', '.join(DOMAINS)}); "
                        f"got {x!r} and {y!r}")
    return DOMAIN_PREFIX + "-vs-".join(sorted((x, y)))


def domain_pair(net: str) -> tuple[str, str] | None:
    """(class-0 domain, class-1 domain) of a :func:`domain_net` name, else None."""
    if not net.startswith(DOMAIN_PREFIX) or "-vs-" not in net:
        return None
    x, _, y = net[len(DOMAIN_PREFIX):].partition("-vs-")
    return x, y


def recipe(net: str) -> dict:
    """The training recipe of ``net``: :data:`RECIPES`, or a domain classifier's."""
    pair = domain_pair(net)
    if pair is not None:
        domain_net(*pair)  # validates
        return {"domains": {pair[0]: [0], pair[1]: [0]}, "repeats": 1, "epochs": 3}
    if net not in RECIPES:
        raise UserError(f"unknown digit classifier {net!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[net]


def num_classes(net: str) -> int:
    return 2 if domain_pair(net) is not None else NUM_CLASSES[net]


def data_version(net: str) -> str:
    """The rendering version a network's weights depend on (its files are keyed by it)."""
    pair = domain_pair(net)
    if pair is not None:
        return "".join(sorted({data_version(d if d == "street-digits" else "digits") for d in pair}))
    if net in REAL:
        return "real1"
    return f"s{STREET_VERSION}" if net == "street-digits" else DATA_VERSION


class DigitClassifier(nn.Module):
    """[RGB, standardised luma] -> conv(32)-pool-conv(64)-pool-conv(64)-pool -> fc(64) = features -> fc(k) = logits.

    The fourth input channel (the image's luma, standardised per image) makes the digit's shape easy
    to find whatever its colours; the RGB channels keep the colours visible to the features.
    """

    def __init__(self, num_classes: int = 10, num_features: int = 64):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2)]

        self.body = nn.Sequential(*block(4, 32), *block(32, 64), *block(64, 64), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(64 * 4 * 4, num_features), nn.ReLU(inplace=True))
        self.head = nn.Linear(num_features, num_classes)
        self.num_features = num_features
        self.num_classes = num_classes

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images of any size and 1 or 3 channels -> (N, 4, 32, 32): RGB and standardised luma."""
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (32, 32):
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
        luma = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        luma = (luma - luma.mean((2, 3), keepdim=True)) / (luma.std((2, 3), keepdim=True) + 1e-3)
        return torch.cat([x, luma], 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(self.prepare(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# ---------------------------------------------------------------------------------------- data
def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1.0


def labelled_set(net: str, split: str, seeds: dict[str, list[int]] | None = None,
                 root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8) and labels a network trains (``split="train"``) or is tested (``"test"``) on.

    Test: every domain of the recipe rendered with seed 0 on ``indices("all", "test")``; a real
    dataset's own split read from ``root``.
    """
    rec = recipe(net)
    if net in REAL:
        from datamodules.digit_datasets import labelled_arrays

        if root is None:
            raise UserError(f"the {net} classifier trains on the {net} files: give --root DIR")
        x, y = labelled_arrays(net, root, split, option="--root", fetch="--download")
        return x.contiguous(), y
    if seeds is None:
        seeds = rec["domains"] if split == "train" else {d: [0] for d in rec["domains"]}
    pair = domain_pair(net)
    xs, ys = [], []
    for domain, domain_seeds in seeds.items():
        idx = indices("all", split, domain)
        for s in domain_seeds:
            img, label, _ = render(domain, idx, seed=s)
            if net == "accessory":
                label = torch.full_like(label, ATTRIBUTE_NET_FOR[domain][1])
            elif pair is not None:
                label = torch.full_like(label, pair.index(domain))
            xs.append(img)
            ys.append(label)
    return torch.cat(xs), torch.cat(ys)


def _jitter(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random affine jitter (shift +-3 px, scale 0.85-1.15, rotation +-12 deg) and a little noise."""
    n = len(x)
    ang = (torch.rand(n, generator=g) * 2 - 1) * (12 * np.pi / 180)
    sc = 0.85 + 0.3 * torch.rand(n, generator=g)
    t = (torch.rand(n, 2, generator=g) * 2 - 1) * (3 * 2 / 32)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    bg = x[:, :, :1, :1]  # the corner colour fills what the shift uncovers
    out = F.grid_sample(x - bg, grid, align_corners=False, padding_mode="zeros") + bg
    return (out + 0.05 * torch.randn(out.shape, generator=g)).clamp(-1, 1)


# ---------------------------------------------------------------------------------------- train / test
@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Share of ``x`` (uint8 or [-1, 1] float) that ``model`` labels ``y``."""
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        xb = _to_float(xb) if xb.dtype == torch.uint8 else xb
        correct += int((model(xb).argmax(1) == y[i:i + batch_size]).sum())
    model.train(was)
    return correct / max(len(x), 1)


def train_digit_classifier(net: str, seed: int = 0, epochs: int | None = None, verbose: bool = True,
                           root: str | Path | None = None) -> tuple[DigitClassifier, dict]:
    """Train one classifier from scratch, deterministically; returns (model, info with test accuracy)."""
    rec = recipe(net)
    epochs = rec["epochs"] if epochs is None else epochs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # results independent of the core count, and no thread contention on busy CPUs
    try:
        with torch.enable_grad():  # also when called from an evaluation (no_grad) that needs it first
            return _train(net, rec, seed, epochs, verbose, root)
    finally:
        torch.set_num_threads(threads)


def _train(net: str, recipe: dict, seed: int, epochs: int, verbose: bool,
           root: str | Path | None = None) -> tuple[DigitClassifier, dict]:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = labelled_set(net, "train", root=root)
    x = x.repeat(recipe["repeats"], 1, 1, 1)
    y = y.repeat(recipe["repeats"])
    model = DigitClassifier(num_classes(net))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    bs = 128
    steps = epochs * ((len(x) + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.2)
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        total, n = 0.0, 0
        for i in range(0, len(x), bs):
            j = perm[i:i + bs]
            xb = _jitter(_to_float(x[j]), g)
            loss = F.cross_entropy(model(xb), y[j])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, n = total + loss.item() * len(j), n + len(j)
        if verbose:
            print(f"  [{net}] epoch {ep + 1}/{epochs}  loss {total / n:.4f}  ({time.perf_counter() - t0:.0f} s)")
    model.eval()
    model.half().float()  # the accuracy reported is that of the float16 weights that are stored
    xt, yt = labelled_set(net, "test", root=root)
    info = {"net": net, "seed": seed, "data_version": data_version(net), "arch_version": ARCH_VERSION,
            "epochs": epochs, "train_images": len(x), "test_images": len(xt),
            "test_accuracy": accuracy(model, xt, yt), "train_seconds": round(time.perf_counter() - t0, 1)}
    return model.requires_grad_(False), info


# ---------------------------------------------------------------------------------------- files
def asset_name(net: str, seed: int = 0) -> str:
    return f"digit-{net}-data{data_version(net)}-arch{ARCH_VERSION}-seed{seed}.pt"


def save_classifier(model: DigitClassifier, info: dict, path: str | Path) -> Path:
    """Float16 state dict + the training info, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"state_dict": state, "info": info}, tmp)
    os.replace(tmp, path)
    return path


def _load_file(path: Path, net: str) -> DigitClassifier:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    info = blob["info"]
    model = DigitClassifier(num_classes(net))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    model.eval().requires_grad_(False)
    model.info = info
    model.weights_path = str(path)
    model.weights_hash = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return model


def classifier_path(net: str, seed: int = 0, train_if_missing: bool = True) -> Path:
    """The weights file of ``net`` for this DATA_VERSION: the shipped asset, else the cache, else trained now."""
    recipe(net)  # validates the name (RECIPES holds every net of NUM_CLASSES)
    name = asset_name(net, seed)
    for folder in (ASSETS, cache_root() / "classifiers"):
        if (folder / name).is_file():
            return folder / name
    if net in REAL:
        raise UserError(f"no {net} classifier in {cache_root() / 'classifiers'}: the accuracy protocol needs one "
                        f"trained on {net} itself; make it with `lit-i2i train-classifier --domain {net} --root DIR` "
                        f"(DIR: the folder holding torchvision's {net} files)")
    if not train_if_missing:
        shipped = sorted(p.name for p in ASSETS.glob(f"digit-{net}-*.pt"))
        raise UserError(f"no {net} digit classifier for data version {data_version(net)}, seed {seed} "
                        f"(shipped: {', '.join(shipped) or 'none'}); make one with "
                        f"`lit-i2i train-classifier --domain {net} --seed {seed}`")
    out = cache_root() / "classifiers" / name
    print(f"lit-i2i: no {net} classifier for data version {data_version(net)}, seed {seed}: training one into {out} "
          "(about a minute on a CPU)")
    model, info = train_digit_classifier(net, seed, verbose=False)
    save_classifier(model, info, out)
    print(f"lit-i2i: {net} classifier test accuracy {info['test_accuracy']:.4f}")
    return out


_LOADED: dict[tuple[str, int, str], DigitClassifier] = {}


def load_digit_classifier(domain: str, seed: int = 0, train_if_missing: bool = True) -> DigitClassifier:
    """The frozen classifier of built-in domain ``domain``, in eval mode: ``digits`` or ``colored-digits``
    (10 digit classes) or ``accessory`` (2 classes: 0 no accessory, 1 accessory).

    Which network reads which built-in domain: :data:`DIGIT_NET_FOR` (digit identity) and
    :data:`ATTRIBUTE_NET_FOR` (accessory). Loaded from disk once per process; every call returns a
    fresh copy, so a caller may move it to its own device.
    """
    import copy

    key = (domain, seed, data_version(domain))
    if key not in _LOADED:
        _LOADED[key] = _load_file(classifier_path(domain, seed, train_if_missing), domain)
    return copy.deepcopy(_LOADED[key])
