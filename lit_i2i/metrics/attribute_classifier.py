"""A CelebA attribute classifier for ``attr_prob`` / ``attr_success`` (Press Table 4, DIDD Table 1,
MBU Table 6): ``lit-i2i train-classifier --celeba ROOT --attribute EXPR``.

The classifier is a torchvision ResNet-18 with one logit, "the image satisfies EXPR", where EXPR is
a domain expression of :class:`datamodules.celeba.CelebAAttributes` (the same grammar the configs use:
``Eyeglasses``, ``Mouth_Slightly_Open`` for the papers' "smile", ``Mustache or Goatee or not No_Beard``).
With ``--versus EXPR2`` it tells EXPR from EXPR2 instead (DIDD Table 1's A-vs-B classifier).
It trains on the CelebA ``train`` partition (``list_eval_partition.txt``) with the configs'
preprocessing (the centred 178 crop resized to ``image_size``, horizontal flips), from scratch by
default or from torchvision's ImageNet weights (``--weights imagenet``, the suite's offline weight
rule: an explicit file, ``LIT_I2I_RESNET18_WEIGHTS``, the torch hub cache, else a download), with
Adam and binary cross-entropy, and reports its own accuracy (and balanced accuracy: the attributes
are unbalanced) on the ``test`` partition.

The file it writes (``state_dict`` + ``info``) loads with ``weights_only=True``; give its path as the
metrics' classifier: ``--metrics.attribute_classifier '{"AtoB": "PATH.pt@0"}'`` (``@0``: the target
domain is the one *without* the attribute, e.g. removal; ``@1`` for adding it). Inputs are the
suite's images in [-1, 1] at any size: they are resized to the training size and normalised with
ImageNet's statistics inside the model.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lit_i2i.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FORMAT = "lit_i2i.attribute_classifier/1"


class AttributeClassifier(nn.Module):
    """ResNet-18 -> one logit; ``features`` (512-d, after global pooling) and ``head`` for the metrics."""

    def __init__(self, image_size: int = 128, attribute: str = ""):
        super().__init__()
        import torchvision

        self.image_size, self.attribute = int(image_size), attribute
        net = torchvision.models.resnet18(weights=None)
        self.head = nn.Linear(net.fc.in_features, 1)
        net.fc = nn.Identity()
        self.backbone = net
        self.num_features = self.head.in_features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], (N, 3 or 1, H, W) -> the network's input."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return ((x.float() + 1) / 2 - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def load_attribute_classifier(path: str | Path) -> AttributeClassifier:
    """A classifier written by :func:`save_attribute_classifier` (``weights_only=True``: no code runs)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"attribute classifier file not found: {p} (make one with lit-i2i train-classifier "
                        "--celeba ROOT --attribute EXPR)")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable or unsafe file is one message
        raise UserError(f"{p}: not a lit-i2i attribute classifier file ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise UserError(f"{p}: not a lit-i2i attribute classifier file (no {FORMAT!r} format tag)")
    info = blob.get("info", {})
    model = AttributeClassifier(info.get("image_size", 128), info.get("attribute", ""))
    model.load_state_dict(blob["state_dict"])
    model.info = info
    return model.eval().requires_grad_(False)


def save_attribute_classifier(model: AttributeClassifier, info: dict, path: str | Path) -> Path:
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save({"format": FORMAT, "state_dict": model.state_dict(), "info": info}, tmp)
    tmp.replace(p)  # atomic: an interrupted save never leaves a half file under the name
    return p


def _datasets(root: str, attribute: str, image_size: int, num_workers: int, versus: str | None = None):
    from datamodules.base import DomainDataset
    from datamodules.celeba import CelebAAttributes

    dm = CelebAAttributes(root=root, a=attribute, b=versus or f"not ({attribute})", load_size=image_size,
                          crop_size=image_size, flip=True, stride=1, num_workers=num_workers)
    dm.check_options()

    def split(name: str, train: bool):
        t = dm.transform(True) if train else dm.eval_transform()
        parts = [DomainDataset(dm.eval_source(d, name), t) for d in dm.domains]
        return torch.utils.data.ConcatDataset(parts), [len(p) for p in parts]

    return split


@torch.no_grad()
def evaluate(model: AttributeClassifier, loader, device: torch.device) -> dict:
    """Accuracy, balanced accuracy and the positive rate on one split (label 1 = has the attribute)."""
    model.eval()
    tp = tn = pos = neg = 0
    for batch in loader:
        y = 1 - batch["label"].to(device)  # domain A (index 0) is the expression
        pred = (model(batch["image"].to(device))[:, 0] > 0).long()
        tp += int(((pred == 1) & (y == 1)).sum())
        tn += int(((pred == 0) & (y == 0)).sum())
        pos += int((y == 1).sum())
        neg += int((y == 0).sum())
    n = pos + neg
    rates = [tp / pos] if pos else []
    rates += [tn / neg] if neg else []
    return {"accuracy": (tp + tn) / max(n, 1), "balanced_accuracy": sum(rates) / max(len(rates), 1),
            "positives": pos, "images": n}


def train_attribute_classifier(root: str, attribute: str, image_size: int = 128, epochs: int = 5,
                               batch_size: int = 64, lr: float = 1e-3, seed: int = 0, weights: str | None = None,
                               max_train: int | None = None, num_workers: int = 0, device: str | None = None,
                               verbose: bool = True, versus: str | None = None) -> tuple[AttributeClassifier, dict]:
    """Train on the CelebA train partition; returns (model in eval mode, info with the test accuracy).

    ``weights``: None (from scratch), ``"imagenet"`` (torchvision's ImageNet weights through the offline
    rule) or a file of them. ``max_train``: a random subset of the training images (quick checks).
    ``versus``: the other class's expression (default ``not (attribute)``; e.g. DIDD Table 1's
    classifier "tells A from B": ``attribute`` = A's expression, ``versus`` = B's; images in neither
    are left out, images in both count as ``attribute``).
    """
    from tqdm.auto import tqdm

    if epochs < 1 or batch_size < 1 or image_size < 32:
        raise UserError(f"--epochs and --batch_size must be >= 1 and --image_size >= 32 "
                        f"(got {epochs}, {batch_size}, {image_size})")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    split = _datasets(root, attribute, image_size, num_workers, versus)
    train_set, train_counts = split("train", True)
    test_set, test_counts = split("test", False)
    g = torch.Generator().manual_seed(seed)
    if max_train is not None and max_train < len(train_set):
        train_set = torch.utils.data.Subset(train_set, torch.randperm(len(train_set), generator=g)[:max_train].tolist())
    torch.manual_seed(seed)
    model = AttributeClassifier(image_size, attribute)
    if weights:
        from lit_i2i.metrics.weights import resolve_weights, torchvision_spec

        file = resolve_weights(torchvision_spec("resnet18"), None if weights == "imagenet" else weights)
        state = torch.load(file, map_location="cpu", weights_only=True)
        missing, unexpected = model.backbone.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")},
                                                             strict=False)
        if missing:
            raise UserError(f"--weights {weights}: {file} is not torchvision ResNet-18 weights (missing {missing[:3]})")
    model.to(dev)
    # class balance: positives are weighted by negatives / positives of the training partition
    pos_weight = torch.tensor([train_counts[1] / max(train_counts[0], 1)], device=dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                                         generator=g, drop_last=len(train_set) > batch_size)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=batch_size, num_workers=num_workers)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        bar = tqdm(loader, desc=f"{attribute} epoch {epoch + 1}/{epochs}", disable=not verbose, leave=False)
        for batch in bar:
            y = (1 - batch["label"]).float().to(dev)
            loss = F.binary_cross_entropy_with_logits(model(batch["image"].to(dev))[:, 0], y, pos_weight=pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - start
    test = evaluate(model, test_loader, dev)
    model.cpu().eval().requires_grad_(False)
    info = {"attribute": attribute, "versus": versus or f"not ({attribute})", "image_size": image_size, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "seed": seed, "weights": weights or "none (from scratch)", "train_images": len(train_set),
            "partition_train_positives": train_counts[0], "test_accuracy": test["accuracy"],
            "test_balanced_accuracy": test["balanced_accuracy"], "test_images": test["images"],
            "test_positives": test["positives"], "train_seconds": round(seconds, 1), "root": str(root)}
    return model, info
