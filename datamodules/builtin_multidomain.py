"""Built-in multi-domain data, no download: the digit classes of a built-in domain as its domains.

``BuiltinMultiDomain(domain="colored-digits")`` turns scikit-learn's digits, rendered by
``datamodules.builtin`` (random foreground/background colours, shift, scale, noise), into ten
"species" ``0`` ... ``9``: the digit class plays the part of the animal species of AnimalFaces (what
a reference gives), the rendering (colours, position, scale) the part of the pose (what the source
keeps). It is the built-in stand-in for TUNIT's multi-domain folders, with their batch contract
(``datamodules.multidomain``): ``{"image", "label", "path"}`` plus, with ``second_view``, ``"view"``
(the same image augmented a second time, independently); training labels are -1 unless kept by
``labelled`` / ``label_fraction`` (chosen per class from ``seed``, at least one image per class when
the fraction is above 0). With ``0 < label_fraction < 1`` training items also carry a labelled
stream (``sup_image``, ``sup_view``, ``sup_label``: :class:`datamodules.semi.LabelledStream`), as
TUNIT's semi-supervised training needs. Validation, test and evaluation sources keep the true labels.

Splits: every one of the 1,797 digits (both halves of ``builtin.halves()``); each half's last 20% is
the test split (val = test), about 1,437 training and 360 test images, 10 classes. The val/test
dataset interleaves the classes (class 0, 1, ..., 9, 0, 1, ...), so the first images of it, which
the image grids draw, show every class.

``classes="scheme"`` (``palette-digits`` only) makes the four colour schemes of
:data:`datamodules.builtin.PALETTE` the domains ``0`` ... ``3`` instead: the scheme is what a domain
(or a reference) gives, the digit and its pose what the source keeps, the built-in stand-in for
StarGAN v2's domains (a digit kept under the digit classifier is the measure). Items' ``label`` is
then the scheme, and evaluation items also carry ``content_label``, the digit, which ``acc`` scores;
:meth:`BuiltinMultiDomain.colour_scheme` gives a domain's (foreground, background) colours for
``scheme_rate`` / ``scheme_error``.

The second view's default augmentation is TUNIT's (affine +-20 degrees, translate 0.1, shear 10;
resized crop 0.9-1.1; colour jitter 0.4, hue 0.125) without the flip (a mirrored digit is another
shape); ``view_hue`` up to 0.5 rotates hues fully and ``view_invert`` inverts the view's colours with
that probability (off by default; not in TUNIT).
"""

from __future__ import annotations

import numpy as np
import torch

from datamodules.base import DomainDataset, TensorSource, TranslationDataModule
from datamodules.builtin import DOMAINS, PALETTE, SIZE, digit_masks, domain_source, palette_schemes
from datamodules.semi import LabelledStream
from datamodules.transforms import apply, build_transform
from lit_i2i.errors import UserError


class _WithContent(torch.utils.data.Dataset):
    """``dataset``'s items with ``"content_label"`` (the digit, when the domains are colour schemes)."""

    def __init__(self, dataset, content_labels: torch.Tensor):
        self.dataset, self.content_labels = dataset, content_labels

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return {**self.dataset[i], "content_label": int(self.content_labels[i])}


class _ViewSource(torch.utils.data.Dataset):
    """Items ``{"image", "view", "label", "path"}`` of a source (two independent transforms)."""

    def __init__(self, source, transform, view_transform=None):
        self.source, self.t, self.tv = source, transform, view_transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict:
        x, label, path = self.source[i]
        item = {"image": apply(self.t, x), "label": label, "path": path}
        if self.tv is not None:
            item["view"] = apply(self.tv, x)
        return item


class BuiltinMultiDomain(TranslationDataModule):
    """The digit classes of a built-in domain as ten domains ``"0"`` ... ``"9"``.

    Args:
        domain: the built-in domain rendered (``colored-digits``, ``digits``, ``street-digits``).
        labelled: False reports every training label as -1 (unsupervised, TUNIT).
        label_fraction: keep the training labels of only this fraction of each class's images.
        seed: rendering seed (colours, shifts, noise) and the choice of the labelled images.
        second_view: add ``"view"`` to training batches.
        view_rotation, view_translate, view_shear, view_scale, view_color_jitter, view_hue: the second
            view's augmentation (0 / None turns one off).
        view_invert: probability of inverting the second view's colours (0: off, TUNIT's augmentation).
        classes: ``digit`` (the ten digit classes are the domains) or ``scheme`` (``palette-digits``
            only: its four colour schemes are the domains; the digit is the content).
        train_limit: use only the first N training images (quick tests).
        batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers: loader options.
    """

    def __init__(self, domain: str = "colored-digits", labelled: bool = False, label_fraction: float = 1.0,
                 seed: int = 0, second_view: bool = True, view_rotation: float = 20.0, view_translate: float = 0.1,
                 view_shear: float = 10.0, view_scale: tuple[float, float] | None = (0.9, 1.1),
                 view_color_jitter: float = 0.4, view_hue: float = 0.125, view_invert: float = 0.0,
                 classes: str = "digit", train_limit: int | None = None,
                 batch_size: int = 32, eval_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = False, persistent_workers: bool = True):
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers)
        if domain not in DOMAINS or domain in ("accessory", "no-accessory"):
            raise UserError(f"data.domain: {domain!r} is not a built-in digit domain; choose colored-digits, "
                            "palette-digits, digits or street-digits")
        if not 0.0 <= label_fraction <= 1.0:
            raise UserError(f"data.label_fraction must be in [0, 1], got {label_fraction}")
        if not 0.0 <= view_hue <= 0.5:
            raise UserError(f"data.view_hue must be in [0, 0.5], got {view_hue}")
        if not 0.0 <= view_invert <= 1.0:
            raise UserError(f"data.view_invert must be in [0, 1], got {view_invert}")
        if classes not in ("digit", "scheme"):
            raise UserError(f"data.classes: 'digit' or 'scheme', got {classes!r}")
        if classes == "scheme" and domain != "palette-digits":
            raise UserError(f"data.classes scheme needs data.domain palette-digits (the domain with colour "
                            f"schemes), got {domain!r}")
        self.domain, self.labelled, self.label_fraction, self.seed = domain, labelled, label_fraction, seed
        self.classes = classes
        self.second_view, self.train_limit = second_view, train_limit
        self.view_augment = dict(rotation=view_rotation, translate=view_translate, shear=view_shear, scale=view_scale,
                                 color_jitter=view_color_jitter, hue=view_hue, invert=view_invert)
        self.domains = tuple(str(k) for k in range(len(PALETTE) if classes == "scheme" else 10))
        self.name = f"builtin-{domain}-{'schemes' if classes == 'scheme' else 'classes'}"

    def builtin_domain(self, domain: str) -> str | None:
        """The built-in domain behind every class (the metrics pick its shipped classifier)."""
        return self.domain if domain in self.domains else None

    # ------------------------------------------------------------------ sources
    def _all(self, split: str) -> TensorSource:
        """Every image of the split, labelled by its domain (digit or colour scheme)."""
        src = domain_source(self.domain, "all", "test" if split == "val" else split, self.seed)
        if self.classes == "scheme":
            src = TensorSource(src.images, palette_schemes(src.index, self.seed), src.name, src.index)
        return src

    def _digits(self, src: TensorSource) -> torch.Tensor:
        """The digit of each image of ``src`` (its builtin index)."""
        return digit_masks()[1][torch.as_tensor(src.index, dtype=torch.long)]

    def _with_content(self, ds, src: TensorSource):
        """Evaluation items of colour-scheme domains carry the digit as ``content_label``."""
        return _WithContent(ds, self._digits(src)) if self.classes == "scheme" else ds

    def colour_scheme(self, domain: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(foreground, background) RGB in [0, 1] of a colour-scheme domain, else None."""
        return PALETTE[int(domain)] if self.classes == "scheme" and domain in self.domains else None

    def eval_dataset(self, domain: str, split: str = "test"):
        ds = super().eval_dataset(domain, split)
        return self._with_content(ds, ds.source)

    def eval_source(self, domain: str, split: str = "test") -> TensorSource:
        if domain not in self.domains:
            raise UserError(f"unknown domain {domain!r}; this data has the classes {', '.join(self.domains)}")
        src = self._all(split)
        keep = torch.nonzero(src.labels == int(domain)).flatten()
        return TensorSource(src.images[keep], src.labels[keep], f"{src.name}/{domain}",
                            [src.index[int(i)] for i in keep])

    def eval_transform(self):
        return build_transform("none", train=False, stride=1)

    def train_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """True labels where kept (``labelled``, ``label_fraction`` per class, from ``seed``), else -1."""
        out = torch.full_like(labels, -1)
        if not self.labelled or self.label_fraction <= 0:
            return out
        rng = np.random.default_rng(self.seed)
        for k in range(len(self.domains)):
            idx = torch.nonzero(labels == k).flatten().numpy()
            if len(idx) == 0:
                continue
            m = len(idx) if self.label_fraction >= 1 else max(1, int(round(self.label_fraction * len(idx))))
            keep = idx[rng.permutation(len(idx))[:m]]
            out[torch.as_tensor(keep)] = k
        return out

    def build(self, split: str):
        if split != "train":
            src = self._all(split)
            order = interleaved(src.labels)
            src = TensorSource(src.images[order], src.labels[order], src.name, [src.index[int(i)] for i in order])
            return self._with_content(DomainDataset(src, self.eval_transform()), src)
        src = self._all("train")
        n = self.train_limit or len(src)
        labels = self.train_labels(src.labels[:n])
        src = TensorSource(src.images[:n], labels, src.name, src.index[:n])
        view = build_transform("none", crop_size=SIZE, train=True, flip=False, stride=1, **self.view_augment) \
            if self.second_view else None
        ds = _ViewSource(src, build_transform("none", train=True, flip=False, stride=1), view)
        if self.labelled and 0.0 < self.label_fraction < 1.0:
            return LabelledStream(ds, labels.tolist())
        return ds


def interleaved(labels: torch.Tensor) -> torch.Tensor:
    """Indices visiting the classes in turn (0, 1, ..., 9, 0, 1, ...), each class in its own order."""
    per = [torch.nonzero(labels == k).flatten().tolist() for k in sorted(set(labels.tolist()))]
    out = []
    for r in range(max(len(p) for p in per)):
        out += [p[r] for p in per if r < len(p)]
    return torch.as_tensor(out, dtype=torch.long)
