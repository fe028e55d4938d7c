"""Offline-first resolution of pretrained weight files (InceptionV3 for FID/KID, VGG for content/style,
AlexNet for LPIPS).

Order, for every file: the explicit path (a CLI/YAML option), else the environment variable, else
the file in the torch hub cache (``torch.hub.get_dir()/checkpoints/<name>``, where torch-fidelity and
torchvision put their downloads), else a download into that cache when the network answers. When
none works: a :class:`UserError` that says where to get the file, where to put it and which variable
or option points at it. Never random weights, never a silent switch to another network (a random VGG
is only there when asked for by name: ``vgg_weights: random``, see ``extractors.VGGExtractor``, which
then never calls this module).
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from lit_i2i.errors import UserError

DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class WeightsSpec:
    """A pretrained file: what it is for, where it comes from, and how a user points at it."""

    what: str       # e.g. "InceptionV3 (torch-fidelity) weights for FID/KID"
    url: str
    env: str        # environment variable holding a path ("" where only the hub cache is looked at)
    option: str     # the CLI option holding a path ("" where there is none)

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def inception_spec() -> WeightsSpec:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return WeightsSpec("InceptionV3 (torch-fidelity, FID/KID) weights", URL_INCEPTION_V3, "LIT_I2I_INCEPTION_WEIGHTS",
                       "--metrics.inception_weights")


def torchvision_spec(arch: str) -> WeightsSpec:
    """ImageNet weights of a torchvision classifier (``vgg16``, ``vgg19``, ``alexnet``, ``resnet18``).

    AlexNet (LPIPS's backbone) is built by torchmetrics through torchvision, which reads only the hub
    cache: it has no variable or option of its own.
    """
    import torchvision.models as tvm

    enum = {"vgg16": tvm.VGG16_Weights, "vgg19": tvm.VGG19_Weights, "alexnet": tvm.AlexNet_Weights,
            "resnet18": tvm.ResNet18_Weights}[arch]
    if arch == "resnet18":  # the CelebA attribute classifier's optional starting point
        return WeightsSpec("torchvision resnet18 ImageNet weights", enum.IMAGENET1K_V1.url, "LIT_I2I_RESNET18_WEIGHTS",
                           "--weights")
    if arch == "alexnet":
        return WeightsSpec("torchvision alexnet ImageNet weights (LPIPS)", enum.IMAGENET1K_V1.url, "", "")
    return WeightsSpec(f"torchvision {arch} ImageNet weights", enum.IMAGENET1K_V1.url, "LIT_I2I_VGG_WEIGHTS",
                       "--metrics.vgg_weights")


def hub_cache_file(spec: WeightsSpec) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / spec.filename


def _download(url: str, dst: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download ``url`` to ``dst`` atomically (a partial file never lands at ``dst``)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def instructions(spec: WeightsSpec) -> str:
    where = hub_cache_file(spec)
    point = f" or set {spec.env}=/path/to/{spec.filename}" if spec.env else ""
    if spec.option:
        point += f" (or pass {spec.option} /path/to/{spec.filename})"
    return (f"{spec.what} are not available offline. Download {spec.url} on a machine with network access "
            f"and copy it to {where}{point}.")


def resolve_weights(spec: WeightsSpec, path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The local file of ``spec``: explicit path, env var, hub cache, download; else a UserError."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"{spec.option or 'weights path'}: file not found: {p}. {instructions(spec)}")
        return p
    env = os.environ.get(spec.env) if spec.env else None
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise UserError(f"{spec.env}={env}: file not found. {instructions(spec)}")
        return p
    cached = hub_cache_file(spec)
    if cached.is_file():
        return cached
    if download:
        try:
            _download(spec.url, cached)
            return cached
        except Exception as e:  # noqa: BLE001 - no network, proxy, disk: all end in the same instructions
            raise UserError(f"{instructions(spec)} (download failed: {type(e).__name__}: {e})") from e
    raise UserError(instructions(spec))
