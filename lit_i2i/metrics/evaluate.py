"""The evaluator: one protocol for every method, through ``model.translate`` and ``datamodule.eval_dataset``.

For each direction ``XtoY`` (``AtoB``: translate domain A's images, compare with real domain B):
  1. the fixed evaluation set is the first ``max_samples`` items of ``eval_dataset(X, split)``
     (sources) and of ``eval_dataset(Y, split)`` (real targets);
  2. the model translates the sources (``model.eval()``, ``torch.no_grad()``; the train mode is
     restored after), optionally with a real target image as ``reference``;
  3. the frozen extractors run on the translations (and, for content, on the sources);
  4. real-target outputs come from the on-disk :class:`~lit_i2i.metrics.cache.FeatureCache`, or are
     computed once and stored there;
  5. :mod:`lit_i2i.metrics.scores` turns them into numbers.

Under DDP (``torch.distributed`` initialised) each rank takes a contiguous block of the evaluation
set (no padding, no duplicates); every per-image output is gathered once across ranks, in rank order,
so every rank holds exactly the tensors a single process would, and computes the same numbers.
Cache hit/miss is agreed between ranks (a miss anywhere is a miss everywhere), and only rank 0
writes the cache.

Metric names (the result keys are ``<name>_<direction>``; the callback prefixes ``val/`` or ``test/``):

=============== ===================== =====================================================
name            extractor             also reported
=============== ===================== =====================================================
fid, kid, mfid  InceptionV3 2048-d    kid_std, kid_subset (subset size), mfid_classes
fid_digits,     built-in digit        kid_digits_std, kid_digits_subset, mfid_digits_classes
kid_digits,     classifier of the
mfid_digits     target domain
acc             same classifier       (translation accuracy vs source labels: the items'
                                      ``content_label`` where the data has one, e.g. the digit when
                                      the domains are colour schemes, else their ``label``)
ref_acc         same classifier       share read as the *reference's* label (reference-guided only;
                                      TUNIT / FUNIT on digit classes: the reference's digit drawn)
scheme_rate,    -: the target         share of outputs whose (background, foreground) colours are
scheme_error    domain's colour       nearest the target domain's, among the data's schemes; the
                scheme                mean colour error to it in [0, 1] (``scores.scheme_scores``;
                                      ``datamodule.colour_scheme``: the built-in palette domains)
attr_prob,      binary attribute
attr_success    classifier
domain_rate     A-vs-B domain         share of outputs the classifier calls the target domain
                classifier            (built-in domains; ``domain-X-vs-Y`` of ``metrics/classifier.py``;
                                      the one-shot benchmark's "B rate")
content, style  VGG (ImageNet)        (``vgg_weights: random``: a seeded random VGG, stand-ins)
psnr, ssim,     - / - / AlexNet       (paired data only; lpips skipped with a note offline)
lpips           LPIPS
ssim_input,     -                     similarity of each output to its own input (SSIM in [0, 1]
l1_input                              images; mean |output - input| in [-1, 1]): how much a
                                      content transfer leaves unchanged (MBU Table 6's "Sim.")
swd,            -: each output against  patch statistics (``metrics/patch.py``): SWD over 7x7
coherence,      its target image        patches of a Laplacian pyramid, nearest-neighbour patch
completeness    (item i of the target   coherence / completeness; lower is closer (structural
                domain, i mod its size) analogy, whose data is one image per domain)
ssim_lowpass,   -: each output against  structure kept (``metrics/patch.py``): SSIM / correlation
corr_lowpass,   its own input           of the blurred luminances, correlation of their edge maps;
corr_edges                              1 for the input itself
cluster_acc,    the model's           (no direction suffix; needs ``model.cluster(x)``)
nmi, ari        ``cluster(x)``
cls_acc         the model's own       ``cls_acc_<domain>``: ``model.classify(x, domain)`` vs labels
                classifier            (UNIT's domain adaptation)
l1_truth,       -: the data's exact   ``datamodule.ground_truth`` (built-in accessory digits): mean
l1_outside,     answer               |output - truth| / 2 ([0, 1] units); the same change from the
colour_error                          input outside the changed region; the error of the region's
                                      mean colour against the truth's (a transferred bar's colour)
mask_iou,       the model's           IoU of ``model.mask(x) >= threshold`` with the true region of
mask_iou_best,  ``mask(x)``           the source (``mask_threshold``, default the model's
mask_area                             ``removal_threshold``, else 0.5); the best IoU over thresholds
                                      0.05-0.95 chosen on the evaluation set (optimistic; also
                                      ``mask_iou_best_threshold``); the share of pixels of target-domain
                                      images (which lack the content) that the mask marks
=============== ===================== =====================================================

``reference`` is True (every direction), False, or a list of directions (e.g. ``[AtoB]``: a guided
transfer beside an unguided removal); ``translate`` gives ``model.translate`` keyword arguments per
direction (e.g. ``{"BtoA": {"mode": "intersection"}}``, ``{"AtoB": {"value": 0.5}}``).

mFID groups each fake by its *target* class (:func:`target_classes`): the reference's label when
``reference`` is on, else the target domain's label when that domain is a single class, else the
source label (content-preserving pairs such as the built-in digits). ``kid_std`` is NaN (shown
``n/a``, written as null, not logged) when the subset size equals both sample counts. Attribute
classifiers may have one logit, two, or a multi-label head (give the column: ``factory#COLUMN@CLASS``);
a ``.pt`` file made by ``lit-i2i train-classifier --celeba ROOT --attribute EXPR`` is also a classifier
(``PATH.pt@CLASS``).
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from lit_i2i.errors import UserError
from lit_i2i.metrics import scores
from lit_i2i.metrics.cache import FeatureCache, fingerprint

#: metric -> what it needs ("inception", "digits", "attribute", "vgg", "paired", "cluster")
METRICS = {
    "fid": "inception", "kid": "inception", "mfid": "inception",
    "fid_digits": "digits", "kid_digits": "digits", "mfid_digits": "digits", "acc": "digits", "ref_acc": "digits",
    "scheme_rate": "scheme", "scheme_error": "scheme",
    "attr_prob": "attribute", "attr_success": "attribute", "domain_rate": "domain",
    "content": "vgg", "style": "vgg",
    "psnr": "paired", "ssim": "paired", "lpips": "paired",
    "ssim_input": "input", "l1_input": "input",
    "swd": "patch", "coherence": "patch", "completeness": "patch",
    "ssim_lowpass": "structure", "corr_lowpass": "structure", "corr_edges": "structure",
    "cluster_acc": "cluster", "nmi": "cluster", "ari": "cluster",
    "cls_acc": "classify",
    "l1_truth": "truth", "l1_outside": "truth", "colour_error": "truth",
    "mask_iou": "mask", "mask_iou_best": "mask", "mask_area": "mask",
}
PAIRED = ("psnr", "ssim", "lpips")
PER_IMAGE = (*PAIRED, "ssim_input", "l1_input", "swd", "coherence", "completeness", "ssim_lowpass", "corr_lowpass",
             "corr_edges", "l1_truth", "l1_outside", "colour_error", "scheme_rate",
             "scheme_error")  # one value per output, averaged
#: thresholds over which ``mask_iou_best`` looks for the best one (chosen on the evaluation set itself)
MASK_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))


# ------------------------------------------------------------------------------------- distributed
def dist_info() -> tuple[int, int]:
    """(rank, world size) of the initialised default process group, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard(n: int, rank: int, world: int) -> range:
    """A contiguous block of range(n) for ``rank``: blocks in rank order tile range(n) exactly."""
    return range(n * rank // world, n * (rank + 1) // world)


def gather_cat(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Concatenate every rank's ``t`` along dim 0, in rank order (sizes may differ); CPU result."""
    _, world = dist_info()
    if world == 1:
        return t.cpu()
    from torchmetrics.utilities.distributed import gather_all_tensors

    return torch.cat([x.cpu() for x in gather_all_tensors(t.to(device).contiguous())])


def all_true(flag: bool, device: torch.device) -> bool:
    _, world = dist_info()
    if world == 1:
        return flag
    t = torch.tensor([int(flag)], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
    return bool(t.item())


class _Outputs:
    """Per-image tensors (concatenated) and ``sum_*`` tensors (summed) collected over batches."""

    def __init__(self):
        self.parts: dict[str, list[torch.Tensor]] = {}

    def add(self, d: dict[str, torch.Tensor]) -> None:
        for k, v in d.items():
            self.parts.setdefault(k, []).append(v.detach().cpu())

    def gather(self, device: torch.device) -> dict[str, torch.Tensor]:
        out = {}
        for k in sorted(self.parts):  # the same order on every rank (every rank has >= 1 image)
            v = self.parts[k]
            if k.startswith("sum_"):
                out[k] = gather_cat(torch.stack(v).sum(0, keepdim=True), device).sum(0)
            else:
                out[k] = gather_cat(torch.cat(v), device)
        return out


def model_device(model) -> torch.device:
    """``model.device`` (LightningModule), else its first parameter's device, else the CPU."""
    dev = getattr(model, "device", None)
    if dev is not None:
        return torch.device(dev)
    p = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return p.device if p is not None else torch.device("cpu")


# ------------------------------------------------------------------------------------- plan
def split_direction(direction: str, domains) -> tuple[str, str]:
    """'AtoB' -> ('A', 'B'); multi-domain names such as 'cattodog' split where both halves are domains."""
    domains = tuple(domains)
    for i in range(1, len(direction) - 2):
        if direction[i:i + 2] == "to" and direction[:i] in domains and direction[i + 2:] in domains:
            return direction[:i], direction[i + 2:]
    raise UserError(f"--metrics.directions: {direction!r} is not <source>to<target> with domains of this data "
                    f"({', '.join(domains)}), e.g. AtoB")


def domain_name(dm, domain: str) -> str:
    """The built-in domain behind a domain letter (the datamodule's ``builtin_domain(letter)``: built-in
    and one-shot data), else the letter (or a multi-domain folder's name) itself."""
    name = dm.builtin_domain(domain) if hasattr(dm, "builtin_domain") else None
    return name if isinstance(name, str) else domain


def _import_factory(spec: str):
    mod, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise UserError(f"cannot import classifier factory {spec!r} (expected 'package.module:function'): {e}") from e


@dataclass
class DirectionPlan:
    direction: str
    src: str
    tgt: str
    digit_net: str | None = None          # built-in classifier name or 'pkg.mod:factory'
    attribute: tuple[str, int, int | None] | None = None  # (classifier, target class, column of a multi-label head)
    domain: tuple[str, int] | None = None  # (domain classifier, the target domain's class)
    schemes: tuple[torch.Tensor, int] | None = None  # ((K, 2, 3) colour schemes of the domains, the target's)


class ModuleExtractor(torch.nn.Module):
    """A user classifier from a factory: logits from ``forward``, features from ``features`` if it has one."""

    def __init__(self, module: torch.nn.Module, name: str):
        super().__init__()
        self.net = module.eval().requires_grad_(False)
        self.name = name
        self.num_features = getattr(module, "num_features", None)

    def forward(self, x):
        if hasattr(self.net, "features") and callable(self.net.features):
            f = self.net.features(x)
            head = getattr(self.net, "head", None)
            return {"features": f, "logits": head(f) if head is not None else self.net(x)}
        return {"logits": self.net(x)}


def parse_attribute_spec(spec: str, default_class: int = 1) -> tuple[str, int, int | None]:
    """``'pkg.mod:factory[#COLUMN][@CLASS]'`` (or a built-in name) -> (classifier, target class, column)."""
    name, _, cls = spec.partition("@")
    name, _, column = name.partition("#")
    try:
        return name, int(cls) if cls else default_class, int(column) if column else None
    except ValueError:
        raise UserError(f"--metrics.attribute_classifier: {spec!r}: expected 'package.module:factory', "
                        "optionally '#COLUMN' (a multi-label head's attribute) and '@CLASS' (integers)") from None


def target_classes(fake: dict, real_labels: torch.Tensor) -> torch.Tensor:
    """Each fake's target class, for mFID (FUNIT / TUNIT / StarGAN v2 group fakes by the class they were
    translated *to*): the reference's label in reference-guided evaluation; else the target domain's
    label when that domain is one class (multi-domain folders: a domain is a class); else the source
    label, which a content-preserving translation keeps (digits -> colored digits: a 3 stays a 3)."""
    if "target_label" in fake:
        return fake["target_label"]
    known = real_labels[real_labels >= 0].unique()
    if len(known) == 1:
        return torch.full_like(fake["label"], int(known[0]))
    return fake["label"]


# ------------------------------------------------------------------------------------- evaluator
class Evaluator:
    """Computes the named metrics of a model on a datamodule; holds the frozen extractors (lazily built).

    Args: see :class:`lit_i2i.metrics.TranslationMetrics`, which wraps one.
    """

    def __init__(self, metrics: list[str], directions: list[str] | None = None, split: str = "test",
                 max_samples: int | None = None, batch_size: int = 64, inception_weights: str | None = None,
                 vgg: str = "vgg19", vgg_weights: str | None = None, classifier: dict[str, str] | None = None,
                 attribute_classifier: dict[str, str] | None = None, classifier_seed: int = 0,
                 reference: bool | list[str] = False, kid_subsets: int = scores.KID_SUBSETS,
                 kid_subset_size: int = scores.KID_SUBSET_SIZE, cache_dir: str | None = None, cache: bool = True,
                 seed: int = 0, translate: dict[str, dict] | None = None, mask_threshold: float | None = None):
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise UserError(f"--metrics.metrics: unknown metric(s) {', '.join(unknown)}; choose from "
                            f"{', '.join(METRICS)}")
        if max_samples is not None and max_samples < 2:
            raise UserError(f"--metrics.max_samples: needs at least 2 samples, got {max_samples}")
        self.metrics = list(dict.fromkeys(metrics))
        self.needs = {METRICS[m] for m in self.metrics}
        self.directions = list(directions or ["AtoB"])
        self.split, self.max_samples, self.batch_size = split, max_samples, batch_size
        self.inception_weights, self.vgg, self.vgg_weights = inception_weights, vgg, vgg_weights
        self.classifier = dict(classifier or {})
        self.attribute_classifier = dict(attribute_classifier or {})
        self.classifier_seed, self.reference = classifier_seed, reference
        if not isinstance(reference, bool) and not (isinstance(reference, (list, tuple))
                                                    and all(isinstance(d, str) for d in reference)):
            raise UserError(f"--metrics.reference: true, false or a list of directions, got {reference!r}")
        self.translate = dict(translate or {})
        if not all(isinstance(v, dict) for v in self.translate.values()):
            raise UserError(f"--metrics.translate: map each direction to translate()'s keyword arguments, got "
                            f"{translate!r}")
        if mask_threshold is not None and not 0.0 < mask_threshold < 1.0:
            raise UserError(f"--metrics.mask_threshold must be in (0, 1), got {mask_threshold}")
        self.mask_threshold = mask_threshold
        self.kid_subsets, self.kid_subset_size, self.seed = kid_subsets, kid_subset_size, seed
        self.cache = FeatureCache(cache_dir, enabled=cache)
        self._nets: dict[str, torch.nn.Module] = {}
        self._lpips_note: str | None = None

    # ---------------------------------------------------------------- plan (cheap; raises UserError early)
    def plan(self, model, dm) -> list[DirectionPlan]:
        if dm is None or not hasattr(dm, "eval_dataset"):
            raise UserError("metrics need a datamodule with eval_dataset(domain, split) (a lit-i2i datamodule)")
        domains = tuple(getattr(dm, "domains", ("A", "B")))
        plans = []
        for d in self.directions if self.needs - {"cluster", "classify"} else []:
            src, tgt = split_direction(d, domains)
            can = getattr(model, "directions", None)
            if can is not None and d not in tuple(can) and set(domains) == {"A", "B"}:
                raise UserError(f"--metrics.directions: {type(model).__name__} translates {', '.join(can)}, not {d}")
            p = DirectionPlan(d, src, tgt)
            target = domain_name(dm, tgt)
            if "digits" in self.needs:
                from lit_i2i.metrics.classifier import DIGIT_NET_FOR

                p.digit_net = self.classifier.get(d) or DIGIT_NET_FOR.get(target)
                if p.digit_net is None:
                    raise UserError(
                        f"metrics {', '.join(m for m in self.metrics if METRICS[m] == 'digits')} need a classifier of "
                        f"the target domain {target!r} of {d}: built-in ones exist for {', '.join(DIGIT_NET_FOR)}; "
                        f"pass --metrics.classifier '{{\"{d}\": \"package.module:factory\"}}' for other data")
            if "attribute" in self.needs:
                from lit_i2i.metrics.classifier import ATTRIBUTE_NET_FOR

                spec = self.attribute_classifier.get(d)
                if spec:
                    p.attribute = parse_attribute_spec(spec, ATTRIBUTE_NET_FOR.get(target, (None, 1))[1])
                elif target in ATTRIBUTE_NET_FOR:
                    p.attribute = (*ATTRIBUTE_NET_FOR[target], None)
                else:
                    raise UserError(
                        f"attr_prob/attr_success need an attribute classifier of the target domain {target!r} of {d}: "
                        f"pass --metrics.attribute_classifier '{{\"{d}\": \"package.module:factory@CLASS\"}}' "
                        "(CLASS: the class meaning 'is the target domain'; for a multi-label head add the "
                        "attribute's column: 'package.module:factory#COLUMN@CLASS')")
            if "domain" in self.needs:
                from lit_i2i.metrics.classifier import domain_net, domain_pair

                names = domain_name(dm, src), target
                try:
                    net = domain_net(*names)
                except UserError:
                    raise UserError(f"domain_rate of {d} needs two built-in domains (a classifier of the pair is "
                                    f"trained for them); this data's are {names[0]!r} and {names[1]!r}") from None
                p.domain = (net, domain_pair(net).index(target))
            if "scheme" in self.needs:
                scheme = getattr(dm, "colour_scheme", None)
                if not callable(scheme) or any(scheme(k) is None for k in (tgt, *domains)):
                    raise UserError(f"scheme_rate/scheme_error of {d} need colour-scheme domains "
                                    f"(datamodule.colour_scheme); {getattr(dm, 'name', type(dm).__name__)} has none "
                                    "(the built-in palette-digits with data.classes scheme has)")
                p.schemes = (torch.tensor([scheme(k) for k in domains], dtype=torch.float32), domains.index(tgt))
            if self.needs & {"truth", "mask"}:
                gt = getattr(dm, "ground_truth", None)
                ref = [0] if self._uses_reference(d) else None
                if not callable(gt) or gt(src, tgt, self.split, [0], ref) is None:
                    names = ", ".join(m for m in self.metrics if METRICS[m] in ("truth", "mask"))
                    raise UserError(f"{names} need the exact answer of {d}, which "
                                    f"{getattr(dm, 'name', type(dm).__name__)} does not know (the built-in "
                                    "no-accessory <-> accessory digits do)")
            if "paired" in self.needs:
                na, nb = len(dm.eval_dataset(src, self.split)), len(dm.eval_dataset(tgt, self.split))
                if na != nb:
                    raise UserError(f"{', '.join(m for m in self.metrics if m in PAIRED)} need paired (aligned) data; "
                                    f"{src} has {na} {self.split} images and {tgt} has {nb}")
            plans.append(p)
        if "inception" in self.needs:
            from lit_i2i.metrics.weights import inception_spec, resolve_weights

            resolve_weights(inception_spec(), self.inception_weights)
        if "vgg" in self.needs:
            from lit_i2i.metrics.extractors import is_random_weights
            from lit_i2i.metrics.weights import resolve_weights, torchvision_spec

            if not is_random_weights(self.vgg_weights):  # "random": a seeded random VGG, no file
                resolve_weights(torchvision_spec(self.vgg), self.vgg_weights)
        if "classify" in self.needs and not callable(getattr(model, "classify", None)):
            raise UserError(f"cls_acc needs a model with its own classifier: {type(model).__name__} has no "
                            "classify(x, domain) method")
        if "mask" in self.needs and not callable(getattr(model, "mask", None)):
            raise UserError(f"mask_iou/mask_iou_best/mask_area need the model's mask: {type(model).__name__} has no "
                            "mask(x) method")
        if "cluster" in self.needs and not callable(getattr(model, "cluster", None)):
            raise UserError(f"cluster_acc/nmi/ari need the model to assign clusters: {type(model).__name__} has no "
                            "cluster(x) method")
        return plans

    # ---------------------------------------------------------------- extractors (built once, frozen)
    def _net(self, key: str, device: torch.device) -> torch.nn.Module:
        if key not in self._nets:
            from lit_i2i.metrics import extractors as E

            if key == "inception":
                net = E.InceptionExtractor(self.inception_weights)
            elif key == "vgg":
                net = E.VGGExtractor(self.vgg, self.vgg_weights)
            elif key.endswith((".pt", ".pth")):  # a file of lit-i2i train-classifier --celeba
                from lit_i2i.metrics.attribute_classifier import load_attribute_classifier

                net = ModuleExtractor(load_attribute_classifier(key), key)
            elif ":" in key:
                net = ModuleExtractor(_import_factory(key)(), key)
            else:
                net = E.DigitExtractor(key, self.classifier_seed)
            self._nets[key] = net
        net = self._nets[key]
        if next(iter(net.parameters()), torch.empty(0)).device != device:
            net.to(device)
        return net

    def _lpips(self, device: torch.device):
        if "lpips" not in self._nets:
            from lit_i2i.metrics.weights import resolve_weights, torchvision_spec

            try:
                resolve_weights(torchvision_spec("alexnet"))  # into the hub cache, where torchvision looks
                from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

                self._nets["lpips"] = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True).eval()
            except Exception as e:  # noqa: BLE001 - LPIPS is optional: skip with a note, never crash the run
                self._lpips_note = f"lpips skipped: {e}"
                self._nets["lpips"] = None
        m = self._nets["lpips"]
        return m.to(device) if m is not None else None

    # ---------------------------------------------------------------- running
    def _n(self, ds) -> int:
        return len(ds) if self.max_samples is None else min(len(ds), self.max_samples)

    def _loader(self, ds, idx: range) -> DataLoader:
        return DataLoader(Subset(ds, list(idx)), batch_size=self.batch_size, shuffle=False, num_workers=0)

    def _feature_nets(self, p: DirectionPlan) -> list[str]:
        nets = []
        if "inception" in self.needs:
            nets.append("inception")
        if "digits" in self.needs:
            nets.append(p.digit_net)
        return nets

    @torch.no_grad()
    def run(self, model, dm, device: torch.device | str | None = None) -> tuple[dict[str, float], list[str]]:
        """(results ``{metric_direction: value}``, notes) for every metric and direction."""
        plans = self.plan(model, dm)
        device = torch.device(device if device is not None else model_device(model))
        was_training = getattr(model, "training", False)
        model.eval()
        results, notes = {}, []
        try:
            for p in plans:
                r, n = self._direction(model, dm, p, device)
                results.update(r)
                notes += n
            if "cluster" in self.needs:
                results.update(self._clustering(model, dm, device))
            if "classify" in self.needs:
                results.update(self._classification(model, dm, device))
        finally:
            model.train(was_training)
        if self._lpips_note and "lpips" in self.metrics:
            notes.append(self._lpips_note)
        if "vgg" in self.needs and getattr(self._nets.get("vgg"), "random", False):
            notes.append(f"content/style from a randomly initialised VGG ({self._nets['vgg'].name}, vgg_weights: "
                         "random): random-feature stand-ins, not comparable with ImageNet-VGG numbers")
        return results, list(dict.fromkeys(notes))

    def _uses_reference(self, direction: str) -> bool:
        return self.reference if isinstance(self.reference, bool) else direction in self.reference

    def _mask_threshold(self, model) -> float:
        if self.mask_threshold is not None:
            return self.mask_threshold
        hparams = getattr(model, "hparams", None) or {}
        return float(hparams.get("removal_threshold", 0.5))

    def _translate(self, model, x, p: DirectionPlan, ref):
        kw = self.translate.get(p.direction, {})
        y = model.translate(x, p.direction, reference=ref, **kw) if ref is not None else model.translate(
            x, p.direction, **kw)
        if y.shape[0] != x.shape[0] or y.ndim != 4:
            raise RuntimeError(f"{type(model).__name__}.translate returned shape {tuple(y.shape)} for input "
                               f"{tuple(x.shape)}")
        return y.float().clamp(-1, 1)

    def _block(self, n: int, what: str) -> range:
        rank, world = dist_info()
        if n < world:
            raise UserError(f"{what}: {n} evaluation images cannot be shared by {world} processes")
        return shard(n, rank, world)

    def _direction(self, model, dm, p: DirectionPlan, device) -> tuple[dict[str, float], list[str]]:
        from lit_i2i.metrics.extractors import to_unit, vgg_content_and_grams

        src_ds, tgt_ds = dm.eval_dataset(p.src, self.split), dm.eval_dataset(p.tgt, self.split)
        n_src, n_tgt = self._n(src_ds), self._n(tgt_ds)
        least = 2 if self.needs & {"inception", "digits", "vgg", "attribute"} else 1  # distributions need 2
        if n_src < least or n_tgt < least:
            raise UserError(f"metrics of {p.direction} need at least {least} {self.split} images per domain; "
                            f"{p.src} has {n_src}, {p.tgt} has {n_tgt}")
        feature_nets = self._feature_nets(p)
        lpips = self._lpips(device) if "lpips" in self.metrics else None
        block = self._block(n_src, p.direction)
        fake, pos, notes = _Outputs(), 0, []
        use_ref = self._uses_reference(p.direction)
        for batch in self._loader(src_ds, block):
            x = batch["image"].to(device)
            idx, pos = block[pos:pos + len(x)], pos + len(x)
            reals = None
            out = {"label": torch.as_tensor(batch["label"]).long()}
            if "content_label" in batch:
                out["content_label"] = torch.as_tensor(batch["content_label"]).long()
            if use_ref or self.needs & {"paired", "patch"}:  # target item i goes with source item i
                items = [tgt_ds[i % len(tgt_ds)] for i in idx]
                reals = torch.stack([t["image"] for t in items]).to(device)
                if use_ref:  # reference-guided: the fake's target class is its reference's
                    out["target_label"] = torch.as_tensor([int(t["label"]) for t in items]).long()
            y = self._translate(model, x, p, reals if use_ref else None)
            for key in feature_nets:
                out.update({f"{key}/{k}": v.float() for k, v in self._net(key, device)(y).items()})
            if p.attribute is not None:
                out["attribute/logits"] = self._net(p.attribute[0], device)(y)["logits"].float()
            if p.domain is not None:
                out["domain/pred"] = self._net(p.domain[0], device)(y)["logits"].argmax(1)
            if "vgg" in self.needs:
                vgg = self._net("vgg", device)
                fy, grams = vgg_content_and_grams(vgg, y)
                if "content" in self.metrics:
                    out["content"] = scores.content_distance(vgg_content_and_grams(vgg, x)[0], fy)
                if "style" in self.metrics:
                    out.update({f"sum_gram/{k}": g.sum(0) for k, g in grams.items()})
            if "paired" in self.needs:
                f01, r01 = to_unit(y), to_unit(reals)
                out["psnr"], out["ssim"] = scores.psnr(f01, r01), scores.ssim(f01, r01)
                if lpips is not None:
                    out["lpips"] = lpips.net(f01, r01, normalize=True).reshape(-1)
            if "input" in self.needs:
                if y.shape != x.shape:
                    raise UserError(f"ssim_input/l1_input compare each output with its input: {p.direction} gives "
                                    f"{tuple(y.shape[1:])} from {tuple(x.shape[1:])}")
                out["ssim_input"] = scores.ssim(to_unit(y), to_unit(x))
                out["l1_input"] = (y.float() - x.float()).abs().flatten(1).mean(1)
            if self.needs & {"patch", "structure"}:
                out.update(_patch_scores(y, x, reals, self.metrics))
            if p.schemes is not None:
                out["scheme_rate"], out["scheme_error"] = scores.scheme_scores(y, *p.schemes)
            if self.needs & {"truth", "mask"}:
                refs = [i % len(tgt_ds) for i in idx] if use_ref else None
                gt = dm.ground_truth(p.src, p.tgt, self.split, list(idx), refs)
                out.update(_truth_scores(y, x, gt["image"], gt["region"].to(device), self.metrics))
                if "mask" in self.needs:
                    m = model.mask(x).float()
                    t = gt["region"].to(device) > 0.5
                    out["mask_iou"] = torch.stack([iou_per_image(m >= thr, t) for thr in
                                                   (self._mask_threshold(model), *MASK_THRESHOLDS)], 1)
            fake.add(out)
        extra = {}
        wanted = [m for m in ("l1_truth", "colour_error") if m in self.metrics]
        if wanted and not any(m in fake.parts for m in wanted):
            notes.append(f"{'/'.join(wanted)} of {p.direction} skipped: its answer depends on a reference "
                         "(pass reference for this direction)")
        if "mask_area" in self.metrics:  # what the mask marks on images without the content
            area, thr = _Outputs(), self._mask_threshold(model)
            for batch in self._loader(tgt_ds, self._block(n_tgt, p.direction)):
                area.add({"mask_area": (model.mask(batch["image"].to(device)).float() >= thr).flatten(1)
                          .double().mean(1)})
            extra[f"mask_area_{p.direction}"] = float(area.gather(device)["mask_area"].mean())
        fake_all = fake.gather(device)
        reals = {key: self._reals(dm, tgt_ds, p, key, n_tgt, device)
                 for key in feature_nets + (["vgg"] if "style" in self.metrics else [])}
        res, more = self._scores(p, fake_all, reals)
        return {**res, **extra}, notes + more

    def _reals(self, dm, tgt_ds, p: DirectionPlan, key: str, n: int, device) -> dict[str, torch.Tensor]:
        """Real-target outputs of extractor ``key``: from the cache, else computed (sharded) and cached."""
        from lit_i2i.metrics.extractors import vgg_content_and_grams

        net = self._net(key, device)
        fields = {"dataset": getattr(dm, "name", type(dm).__name__), "split": self.split, "domain": p.tgt,
                  "extractor": net.name + ("-grams" if key == "vgg" else ""),
                  "resolution": "x".join(map(str, tgt_ds[0]["image"].shape[-2:])), "n": n,
                  "fingerprint": fingerprint(tgt_ds, n)}
        cached = self.cache.get(fields)
        if all_true(cached is not None, device):
            return cached
        out = _Outputs()
        for batch in self._loader(tgt_ds, self._block(n, p.direction)):
            x = batch["image"].to(device)
            d = {"label": torch.as_tensor(batch["label"]).long()}
            if key == "vgg":
                d.update({f"sum_gram/{k}": g.sum(0) for k, g in vgg_content_and_grams(net, x)[1].items()})
            else:
                d["features"] = net(x)["features"].float()
            out.add(d)
        data = out.gather(device)
        if dist_info()[0] == 0:
            self.cache.put(fields, data)
        return data

    def _scores(self, p: DirectionPlan, fake: dict, reals: dict) -> tuple[dict[str, float], list[str]]:
        d, res, notes = p.direction, {}, []
        for key, suffix in (("inception", ""), (p.digit_net, "_digits")):
            if key not in reals:
                continue
            rf, ff = reals[key]["features"], fake.get(f"{key}/features")
            if ff is None:
                notes.append(f"{key} has no features(): fid{suffix}/kid{suffix} of {d} skipped")
                continue
            if f"fid{suffix}" in self.metrics:
                res[f"fid{suffix}_{d}"] = scores.fid(rf, ff)
            if f"kid{suffix}" in self.metrics:
                m, s, size = scores.kid(rf, ff, self.kid_subsets, self.kid_subset_size, self.seed)
                res[f"kid{suffix}_{d}"], res[f"kid{suffix}_std_{d}"], res[f"kid{suffix}_subset_{d}"] = m, s, size
                if size < self.kid_subset_size:
                    notes.append(f"kid{suffix}_{d}: subset size {size} (only {len(rf)} real / {len(ff)} fake images)")
                if math.isnan(s):
                    notes.append(f"kid{suffix}_std_{d}: unavailable: the subset size equals both sample counts, so "
                                 "every subset is the whole set (evaluate more images than kid_subset_size)")
            if f"mfid{suffix}" in self.metrics:
                v, k = scores.class_wise_fid(rf, reals[key]["label"], ff, target_classes(fake, reals[key]["label"]))
                if k:
                    res[f"mfid{suffix}_{d}"], res[f"mfid{suffix}_classes_{d}"] = v, k
                else:
                    notes.append(f"mfid{suffix}_{d} skipped: no class with >= 2 labelled real and fake images")
        if "acc" in self.metrics:
            kept = fake.get("content_label", fake["label"])  # the digit, where the domains are colour schemes
            acc, n = scores.translation_accuracy(fake[f"{p.digit_net}/logits"], kept)
            if n:
                res[f"acc_{d}"] = acc
            else:
                notes.append(f"acc_{d} skipped: the {p.src} images have no labels")
        if "ref_acc" in self.metrics:
            if "target_label" not in fake:
                notes.append(f"ref_acc_{d} skipped: it scores reference-guided outputs (pass reference for {d})")
            else:
                acc, n = scores.translation_accuracy(fake[f"{p.digit_net}/logits"], fake["target_label"])
                if n:
                    res[f"ref_acc_{d}"] = acc
                else:
                    notes.append(f"ref_acc_{d} skipped: the {p.tgt} references have no labels")
        if p.attribute is not None:
            try:
                prob, success = scores.attribute_scores(fake["attribute/logits"], p.attribute[1], p.attribute[2])
            except ValueError as e:
                raise UserError(f"--metrics.attribute_classifier ({p.attribute[0]}, {d}): {e}") from None
            if "attr_prob" in self.metrics:
                res[f"attr_prob_{d}"] = prob
            if "attr_success" in self.metrics:
                res[f"attr_success_{d}"] = success
        if p.domain is not None:
            res[f"domain_rate_{d}"] = float((fake["domain/pred"] == p.domain[1]).double().mean())
        if "content" in self.metrics:
            res[f"content_{d}"] = float(fake["content"].mean())
        if "style" in self.metrics:
            nf, nr = len(fake["label"]), len(reals["vgg"]["label"])
            mean_f = {k.split("/", 1)[1]: v / nf for k, v in fake.items() if k.startswith("sum_gram/")}
            mean_r = {k.split("/", 1)[1]: v / nr for k, v in reals["vgg"].items() if k.startswith("sum_gram/")}
            res[f"style_{d}"] = scores.style_distance(mean_f, mean_r)
        for m in PER_IMAGE:
            if m in self.metrics and m in fake:
                res[f"{m}_{d}"] = float(fake[m].double().mean())
        if "mask_iou" in fake:  # columns: the chosen threshold, then MASK_THRESHOLDS
            ious = fake["mask_iou"].double().mean(0)
            if "mask_iou" in self.metrics:
                res[f"mask_iou_{d}"] = float(ious[0])
            if "mask_iou_best" in self.metrics:
                k = int(ious[1:].argmax())
                res[f"mask_iou_best_{d}"], res[f"mask_iou_best_threshold_{d}"] = float(ious[1 + k]), MASK_THRESHOLDS[k]
        return res, notes

    def _clustering(self, model, dm, device) -> dict[str, float]:
        out = _Outputs()
        for k, dom in enumerate(getattr(dm, "domains", ("A", "B"))):
            ds = dm.eval_dataset(dom, self.split)
            for batch in self._loader(ds, self._block(self._n(ds), "cluster metrics")):
                label = torch.as_tensor(batch["label"]).long()
                out.add({"pred": torch.as_tensor(model.cluster(batch["image"].to(device))).long().reshape(-1),
                         "true": torch.where(label >= 0, label, torch.full_like(label, k))})
        g = out.gather(device)
        fns = {"cluster_acc": scores.cluster_accuracy, "nmi": scores.nmi, "ari": scores.ari}
        return {m: fns[m](g["pred"], g["true"]) for m in fns if m in self.metrics}


    def _classification(self, model, dm, device) -> dict[str, float]:
        """``cls_acc_<domain>``: the model's own classifier (``classify(x, domain)``, e.g. UNIT's
        domain-adaptation head) on every labelled test image of each domain."""
        res = {}
        for dom in getattr(dm, "domains", ("A", "B")):
            ds = dm.eval_dataset(dom, self.split)
            out = _Outputs()
            for batch in self._loader(ds, self._block(self._n(ds), "cls_acc")):
                logits = model.classify(batch["image"].to(device), dom)
                out.add({"logits": logits.float(), "label": torch.as_tensor(batch["label"]).long()})
            g = out.gather(device)
            acc, n = scores.translation_accuracy(g["logits"], g["label"])
            if n:
                res[f"cls_acc_{dom}"] = acc
        return res


def iou_per_image(m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of two boolean masks (N, 1, H, W); 0 where both are empty."""
    inter, union = (m & t).flatten(1).sum(1).double(), (m | t).flatten(1).sum(1).double()
    return inter / union.clamp(min=1)


def _truth_scores(y: torch.Tensor, x: torch.Tensor, truth: torch.Tensor | None, region: torch.Tensor,
                  metrics: list[str]) -> dict:
    """Per output, against the exact answer ``truth`` (None when it is not determined) and its changed
    ``region`` (N, 1, H, W): L1 to the truth, the change from the input outside the region, the region's
    mean-colour error (all in [0, 1] pixel units)."""
    out = {}
    if "l1_outside" in metrics:
        w = 1 - region
        change = ((y - x).abs().mean(1, keepdim=True) * w).flatten(1).sum(1) / 2
        out["l1_outside"] = change / w.flatten(1).sum(1).clamp(min=1)
    if truth is not None:
        truth = truth.to(y.device)
        if "l1_truth" in metrics:
            out["l1_truth"] = (y - truth).abs().flatten(1).mean(1) / 2
        if "colour_error" in metrics:
            area = region.flatten(2).sum(2).clamp(min=1)

            def mean_colour(im):  # (N, C) in [0, 1], over the region
                return ((im + 1) / 2 * region).flatten(2).sum(2) / area

            out["colour_error"] = (mean_colour(y) - mean_colour(truth)).abs().mean(1)
    return out


def _patch_scores(y: torch.Tensor, x: torch.Tensor, reals: torch.Tensor | None, metrics: list[str]) -> dict:
    """Per output: patch statistics against its target image ``reals[i]`` and structure kept from its
    input ``x[i]`` (``metrics/patch.py``; CPU, one image at a time)."""
    from lit_i2i.metrics import patch as pm

    rows = []
    for i in range(len(y)):
        yi, r = y[i].cpu(), {}
        if reals is not None and {"swd", "coherence", "completeness"} & set(metrics):
            t = reals[i].cpu()
            if "swd" in metrics:
                r["swd"] = pm.swd_pyramid(yi, t)["swd"]
            if {"coherence", "completeness"} & set(metrics):
                nn_ = pm.patch_nn(yi, t)
                r["coherence"], r["completeness"] = nn_["coherence"], nn_["completeness"]
        if {"ssim_lowpass", "corr_lowpass", "corr_edges"} & set(metrics):
            r.update(pm.structure_scores(yi, x[i].cpu()))
        rows.append(r)
    return {k: torch.tensor([row[k] for row in rows], dtype=torch.float64, device=y.device) for k in rows[0]
            if k in metrics}


# ------------------------------------------------------------------------------------- entry point
def format_table(results: dict[str, float], directions: list[str]) -> str:
    """Rows: metric names; columns: directions (plus one for direction-free metrics)."""
    rows: dict[str, dict[str, float]] = {}
    for k, v in results.items():
        for d in directions:
            if k.endswith(f"_{d}"):
                rows.setdefault(k[: -len(d) - 1], {})[d] = v
                break
        else:
            rows.setdefault(k, {})["-"] = v
    cols = [d for d in directions if any(d in r for r in rows.values())] + (
        ["-"] if any("-" in r for r in rows.values()) else [])
    width = max([len(r) for r in rows] + [6])

    def fmt(v):
        if v is None or math.isnan(v):
            return "" if v is None else "n/a"
        return f"{v:.0f}" if float(v).is_integer() and abs(v) >= 10 else f"{v:.4f}"

    lines = [f"{'metric':<{width}}  " + "  ".join(f"{c:>10}" for c in cols)]
    lines += [f"{r:<{width}}  " + "  ".join(f"{fmt(vals.get(c)):>10}" for c in cols) for r, vals in rows.items()]
    return "\n".join(lines)


def evaluate_model(model, datamodule, metrics: list[str], directions: list[str] | None = None, split: str = "test",
                   max_samples: int | None = None, out_json: str | None = None, inception_weights: str | None = None,
                   cache_dir: str | None = None, logger=None, **options) -> dict[str, float]:
    """Evaluate ``model`` on ``datamodule``: print a table, write ``out_json``, log a ``wandb.Table``.

    ``options`` go to :class:`Evaluator` (batch_size, vgg, vgg_weights, classifier, attribute_classifier,
    classifier_seed, reference, kid_subsets, kid_subset_size, cache, seed). Returns ``{metric_direction: value}``.
    """
    directions = list(directions or getattr(model, "directions", ["AtoB"]))
    ev = Evaluator(metrics, directions, split, max_samples, inception_weights=inception_weights,
                   cache_dir=cache_dir, **options)
    results, notes = ev.run(model, datamodule)
    rank, _ = dist_info()
    if rank != 0:
        return results
    method = getattr(model, "method_name", type(model).__name__)
    dataset = getattr(datamodule, "name", type(datamodule).__name__)
    print(f"\nevaluation of {method} on {dataset} ({split}, max_samples={max_samples}):")
    print(format_table(results, directions))
    for n in notes:
        print(f"note: {n}")
    payload = {"method": method, "dataset": dataset, "split": split, "max_samples": max_samples,
               "directions": directions, "metrics": {k: (None if math.isnan(v) else v) for k, v in results.items()},
               "notes": notes}
    if out_json:
        path = Path(out_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {path}")
    if logger is not None:
        log_results(logger, results, split)
    return results


def log_results(logger, results: dict[str, float], split: str) -> None:
    """Scalars ``<split>/<name>`` through the logger, and a ``wandb.Table`` where the logger is W&B's
    (a Lightning ``WandbLogger`` or anything with its ``log_table`` and ``experiment.log``)."""
    results = {k: v for k, v in results.items() if v is not None and not math.isnan(v)}
    logger.log_metrics({f"{split}/{k}": v for k, v in results.items()})
    if hasattr(logger, "log_table") and hasattr(getattr(logger, "experiment", None), "log"):
        import wandb

        table = wandb.Table(columns=["metric", "value"], data=[[k, float(v)] for k, v in results.items()])
        logger.experiment.log({f"{split}/metrics_table": table})
