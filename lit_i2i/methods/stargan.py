"""StarGAN: Choi, Choi, Kim, Ha, Kim, Choo, "StarGAN: Unified Generative Adversarial Networks for
Multi-Domain Image-to-Image Translation", CVPR 2018. Follows yunjey/stargan@94dd002 (``solver.py``,
``model.py``, ``data_loader.py``); networks in ``lit_i2i/nets/stargan.py``.

One generator G(x, c) for every domain: the target label c (N, c_dim) is tiled as extra input
channels. D has a WGAN-GP source head and a domain-classification head. Per iteration (one batch):
one D step; every ``n_critic``-th iteration (``(i + 1) % n_critic == 0``) also one G step, on the same
batch. The target labels c' are the batch's own labels shuffled (``torch.randperm``).

| term | formula | weight (default) |
|---|---|---|
| loss_D_real | −mean D_src(x) | 1 |
| loss_D_fake | mean D_src(G(x, c')) (fake detached) | 1 |
| loss_D_cls | cls(D_cls(x), c) | lambda_cls = 1 |
| loss_D_gp | mean (‖∇ D_src(x̂)‖₂ − 1)², x̂ = α x + (1 − α) G(x, c'), α ~ U(0, 1) per image | lambda_gp = 10 |
| loss_G_fake | −mean D_src(G(x, c')) | 1 |
| loss_G_cls | cls(D_cls(G(x, c')), c') | lambda_cls = 1 |
| loss_G_rec | mean ‖x − G(G(x, c'), c)‖₁ | lambda_rec = 10 |

cls = binary cross-entropy with logits summed over the attributes, mean over the batch (CelebA:
``label_mode: multi``) or softmax cross-entropy (RaFD: ``label_mode: single``, labels one-hot).
Adam(1e-4 for G and D, betas 0.5, 0.999), batch 16, ``num_iters`` 200,000 with the learning-rate rule
of ``num_iters_decay`` (100,000) and ``lr_update_step`` (1,000) below. Data: CelebA with the five
attributes Black_Hair, Blond_Hair, Brown_Hair, Male, Young (CenterCrop 178, resize 128, random flip;
the official split: ``split_protocol: stargan``), RaFD as ``root/train/<expression>/`` folders
(CenterCrop 256, resize 128, 8 classes). Official parameter counts (128x128): G 8,430,528,
D 44,762,048 (c_dim 5); G 8,439,936, D 44,786,624 (c_dim 8).

Departures from the official code:
  - **Translation in eval mode, with per-image normalisation.** The official InstanceNorm layers track
    running statistics that the official code never uses (it never calls ``.eval()``; in eval mode they
    break the outputs, stargan issue 102). Lightning's validation, this suite's evaluator and grids
    call ``.eval()``, so the port's InstanceNorm keeps no running statistics (``nets/stargan.py``):
    ``translate`` in eval mode computes exactly what the official code computes in train mode, and
    validation never changes the network. Official checkpoints load through
    ``nets.stargan.official_state_dict`` (drops the unused buffers).
  - **Exact resume.** The checkpoint holds both Adam states and the learning-rate rule's position
    (a ``LambdaLR`` stepped every iteration); the official ``restore_model`` restores the two nets
    only (fresh Adam moments, and the learning rate restarts from ``g_lr``/``d_lr`` even when resumed
    inside the decay).
  - **Learning-rate rule.** ``lr_decay: official`` (default) reproduces the code: every
    ``lr_update_step`` iterations past ``num_iters - num_iters_decay`` the rate drops by
    ``lr / num_iters_decay``, i.e. 100 drops of 1e-9 that end at 0.999 x the initial rate (the code's
    decay is 1,000 times smaller than the paper's "linear decay to 0"). ``lr_decay: linear`` is the
    paper's: drops of ``lr * lr_update_step / num_iters_decay``, reaching 0 at ``num_iters``. Up to float
    rounding (the code subtracts repeatedly; here the rate is lr x (1 − drops x step)).
  - On G iterations the fake of the D step is computed with gradients and reused by the G step (the
    code runs ``G(x_real, c_trg)`` again after the D update; G is unchanged in between, so the values are
    the same and one forward pass is saved); otherwise the D step's fake is made under ``no_grad``.
  - Two-domain data (``{"A", "B"}`` batches, e.g. the built-in accessory digits): A and B images form one
    batch of 2 x batch_size, labelled with one attribute "is B" (``label_mode: multi``, one name) or two
    classes (``label_mode: single``, two names).
  - Not ported: the joint CelebA + RaFD training with the mask vector (``--dataset Both``); the
    paper's RaFD classification-error protocol (a classifier of your own:
    ``--metrics.attribute_classifier``).

Translation (the one door, shared by StarGAN, AttGAN and STGAN: :class:`AttributeEditor`):
``translate(x, direction="AtoB", reference=None, mode=None, attributes=None, source_attributes=None,
intensity=None)``:
  - ``mode="attr:Eyeglasses=0,Male=1"``: set the named attributes (0 or 1) and keep the others as the
    source has them; ``mode="slide:Pale_Skin=0.5"``: put a raw value into the model's attribute input
    (the AttGAN/STGAN attribute slider; any float). ``lit-i2i translate --mode "attr:Male=1"`` passes it.
  - ``direction``: ``AtoB``/``BtoA`` run the model's ``edits`` (e.g. ``{"AtoB": "Eyeglasses=0"}``:
    A = with glasses, B = without); there the named attributes are taken to hold the other value
    in the source domain. Single-label data (RaFD) also take ``"<source>to<target>"`` (``neutraltohappy``).
  - ``attributes``: an explicit target vector (K,) or (N, K) of 0/1 values, instead of an edit.
  - ``source_attributes``: the inputs' own attribute vectors (N, K); when not given they are read
    by the model's own attribute classifier (D's classification head, thresholded at 0.5).
  - ``intensity``: AttGAN/STGAN: the factor on the edited attributes' input (their ``test_int``).
  Setting a hair colour to 1 sets the other hair colours to 0 (StarGAN's ``create_labels``; AttGAN and
  STGAN apply their ``check_attribute_conflict`` rules). :meth:`AttributeEditor.attribute_grid`
  gives the official sample grid: the input, then one column per attribute flipped (hair colours:
  set), or one per class for single-label data (the run's grids); :meth:`AttributeEditor.slider_grid`
  one attribute's input swept over values (the official ``test_slide``).
"""

from __future__ import annotations

import difflib
import itertools
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from lit_i2i.core import TranslationModule, gradient_penalty
from lit_i2i.errors import UserError
from lit_i2i.nets.stargan import StarDiscriminator, StarGenerator

LABEL_MODES = ("multi", "single")
LR_DECAYS = ("official", "linear")
HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
#: the official CelebA setting (``--selected_attrs``)
CELEBA5 = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
#: attribute set to 1 -> attributes set to 0 with it: StarGAN's create_labels (hair colours only) and
#: AttGAN/STGAN's check_attribute_conflict
CONFLICTS = {
    "stargan": {h: tuple(o for o in HAIR if o != h) for h in HAIR},
    "attgan": {**{h: tuple(o for o in HAIR if o != h) for h in HAIR},
               "Bald": ("Bangs",), "Receding_Hairline": ("Bangs",), "Bangs": ("Bald", "Receding_Hairline"),
               "Straight_Hair": ("Wavy_Hair",), "Wavy_Hair": ("Straight_Hair",)},
}


@dataclass
class Edit:
    """A parsed edit: ``targets`` attribute index -> 0/1, ``raw`` index -> a value for the model's input;
    ``flip_source``: the named attributes hold the other value in the source (a direction's edit)."""
    targets: dict[int, float] = field(default_factory=dict)
    raw: dict[int, float] = field(default_factory=dict)
    flip_source: bool = False


def parse_edit(spec: str, names: list[str], option: str = "mode") -> Edit:
    """``"attr:NAME=0|1,..."`` (``attr:`` may be left out) or ``"slide:NAME=FLOAT,..."`` -> :class:`Edit`."""
    kind, sep, body = spec.partition(":")
    if not sep:
        kind, body = "attr", spec
    if kind not in ("attr", "slide"):
        raise UserError(f"{option}: {spec!r}: expected 'attr:NAME=0|1,...' or 'slide:NAME=VALUE,...'")
    edit = Edit()
    for item in filter(None, (s.strip() for s in body.split(","))):
        name, eq, value = (t.strip() for t in item.partition("="))
        if not eq or not name:
            raise UserError(f"{option}: {item!r} in {spec!r} is not NAME=VALUE")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            hint = f"close names: {', '.join(close)}" if close else f"the model's attributes are: {', '.join(names)}"
            raise UserError(f"{option}: unknown attribute {name!r} in {spec!r}; {hint}")
        try:
            v = float(value)
        except ValueError:
            raise UserError(f"{option}: {item!r} in {spec!r}: the value must be a number") from None
        if kind == "attr" and v not in (0.0, 1.0):
            raise UserError(f"{option}: {item!r} in {spec!r}: attr: values are 0 or 1 (use slide:{name}={value} "
                            "for a raw input value)")
        (edit.targets if kind == "attr" else edit.raw)[names.index(name)] = v
    if not edit.targets and not edit.raw:
        raise UserError(f"{option}: {spec!r} names no attribute")
    return edit


class AttributeEditor(TranslationModule):
    """What StarGAN, AttGAN and STGAN share: attribute names, the batch kinds they train on, edits, the
    attribute grid. A subclass sets ``conflict_rules`` and implements :meth:`attribute_logits` (its own
    attribute classifier, for the source attributes) and :meth:`generate` (how a target vector enters G)."""

    conflict_rules = "stargan"
    #: whether the grid starts with a reconstruction column (G(x, source attributes)): AttGAN / STGAN
    grid_reconstruction = False

    def init_attributes(self, attributes: list[str], label_mode: str, edits: dict[str, str] | None,
                        image_size: int, channels: int) -> None:
        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {', '.join(LABEL_MODES)}, got {label_mode!r}")
        if not attributes or len(set(attributes)) != len(attributes):
            raise ValueError(f"attributes must name at least one attribute, each once, got {attributes}")
        if label_mode == "single" and len(attributes) < 2:
            raise ValueError("label_mode single needs at least two classes in attributes")
        self.attribute_names = list(attributes)
        self.label_mode, self.image_size, self.channels = label_mode, image_size, channels
        if edits is None:
            names = self.attribute_names
            edits = ({"AtoB": f"{names[0]}=1", "BtoA": f"{names[0]}=0"} if label_mode == "multi" else
                     {"AtoB": f"{names[1]}=1", "BtoA": f"{names[0]}=1"} if len(names) == 2 else {})
        self.edits = dict(edits)
        for d, spec in self.edits.items():  # fail at construction, naming the option
            self._direction_edit(spec, f"model.edits[{d}]")

    @property
    def n_attributes(self) -> int:
        return len(self.attribute_names)

    @property
    def directions(self) -> tuple[str, ...]:
        pairs = tuple(f"{s}to{t}" for s, t in itertools.permutations(self.attribute_names, 2)) \
            if self.label_mode == "single" else ()
        return tuple(self.edits) + tuple(p for p in pairs if p not in self.edits)

    def io_channels(self) -> dict[str, tuple[str, int]]:
        return {"A": ("channels", self.channels), "B": ("channels", self.channels)}

    # ------------------------------------------------------------------ data
    def parse_batch(self, batch: dict, grid: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, attribute vectors (N, K) float 0/1) of a batch: multi-attribute ``{"image", "label"
        (N, K)}``, single-label ``{"image", "label" (N,)}`` (one-hot), or two-domain ``{"A", "B"}`` (A then
        B; ``grid``: half of each)."""
        k = self.n_attributes
        if "image" in batch:
            x, lab = batch["image"], torch.as_tensor(batch["label"], device=batch["image"].device)
            if self.label_mode == "single":
                if lab.ndim != 1 or lab.is_floating_point() or (lab < 0).any() or (lab >= k).any():
                    raise UserError(f"{type(self).__name__} (label_mode single, {k} classes) needs class labels "
                                    f"0..{k - 1} for every training image, got {tuple(lab.shape)} {lab.dtype} labels")
                return x, F.one_hot(lab.long(), k).to(x.dtype)
            if lab.ndim != 2 or lab.shape[1] != k:
                raise UserError(f"{type(self).__name__} needs attribute vectors of its {k} attributes "
                                f"({', '.join(self.attribute_names)}) as labels, got labels of shape "
                                f"{tuple(lab.shape)}; "
                                "use datamodules.celeba.CelebAAttributes with data.attributes (the same list), or "
                                "label_mode single for one class per image")
            return x, lab.to(x.dtype)
        if "A" in batch and "B" in batch:
            if (self.label_mode, k) not in (("multi", 1), ("single", 2)):
                raise UserError(f"two-domain data give one attribute (is B) or two classes (A, B); "
                                f"{type(self).__name__} has {k} attributes in label_mode {self.label_mode}")
            xa, xb = batch["A"], batch["B"]
            if grid:
                n = max(1, min(len(xa), len(xb), 8) // 2)
                xa, xb = xa[:n], xb[:n]
            x = torch.cat([xa, xb])
            is_b = torch.cat([torch.zeros(len(xa)), torch.ones(len(xb))]).to(x)
            return x, (is_b[:, None] if k == 1 else torch.stack([1 - is_b, is_b], 1))
        raise UserError(f"{type(self).__name__} trains on {{'image', 'label'}} or {{'A', 'B'}} batches, "
                        f"got {sorted(batch)}")

    def setup(self, stage: str | None = None) -> None:
        """Before fitting: the data's attributes, classes and image size against the model's (one line)."""
        trainer = getattr(self, "_trainer", None)
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is None:
            return
        ours = self.attribute_names
        theirs = getattr(dm, "attributes", None)
        if theirs is not None and list(theirs) != ours:
            raise UserError(f"data.attributes {list(theirs)} differ from model.attributes {ours}: give both the same "
                            "list, in the same order")
        domains = list(getattr(dm, "domains", ()))
        if self.label_mode == "single" and domains not in (["A", "B"], ours):
            raise UserError(f"model.attributes {ours} must be the data's domains {domains}, in this order "
                            "(label_mode single: one class per domain)")
        try:
            shapes = dm.input_shapes()
        except Exception:  # noqa: BLE001 - a datamodule that cannot tell its shapes is checked by the first batch
            return
        want = (self.channels, self.image_size, self.image_size)
        for _, path, shape in shapes:
            if tuple(shape) != want:
                raise UserError(f"image {path} is {shape[-1]}x{shape[-2]} with {shape[0]} channel(s) after the "
                                f"preprocessing, but {type(self).__name__} takes {self.image_size}x{self.image_size} "
                                f"with {self.channels} (model.image_size, model.channels; its discriminator's head "
                                "covers the whole image); set --data.init_args.crop_size or "
                                "--model.init_args.image_size")

    # ------------------------------------------------------------------ attributes and edits
    def attribute_logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def estimate_attributes(self, x: torch.Tensor) -> torch.Tensor:
        """The model's own reading of x's attributes (N, K) 0/1: its classifier, thresholded at 0.5 (argmax
        for single-label data)."""
        z = self.attribute_logits(x).float()
        if self.label_mode == "single":
            return F.one_hot(z.argmax(1), self.n_attributes).to(x.dtype)
        return (z > 0).to(x.dtype)

    def _direction_edit(self, spec: str, option: str) -> Edit:
        edit = parse_edit(spec, self.attribute_names, option)
        if self.label_mode == "single" and (edit.raw or list(edit.targets.values()) != [1.0]):
            raise UserError(f"{option}: {spec!r}: single-label data take one class set to 1 (e.g. "
                            f"'{self.attribute_names[0]}=1')")
        return edit

    def edit_for(self, direction: str, mode: str | None) -> Edit:
        if mode is not None:
            return self._direction_edit(mode, "--mode")
        if direction in self.edits:
            edit = self._direction_edit(self.edits[direction], f"model.edits[{direction}]")
            edit.flip_source = True
            return edit
        if self.label_mode == "single":
            for t in self.attribute_names:
                if direction.endswith(f"to{t}") and direction[:-len(t) - 2] in self.attribute_names:
                    return Edit(targets={self.attribute_names.index(t): 1.0})
        raise UserError(f"--direction: {type(self).__name__} translates {', '.join(self.directions)} "
                        f"(model.edits), or give --mode 'attr:NAME=0|1,...'; not {direction!r}")

    def resolve_conflicts(self, b: torch.Tensor, k: int) -> None:
        """In place: rows of b where attribute k is 1 get the attributes it conflicts with set to 0."""
        name = self.attribute_names[k]
        for other in CONFLICTS[self.conflict_rules].get(name, ()):
            if other in self.attribute_names:
                j = self.attribute_names.index(other)
                b[:, j] = torch.where(b[:, k] == 1, torch.zeros_like(b[:, j]), b[:, j])

    def apply_edit(self, a: torch.Tensor, edit: Edit) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """(target b, edited mask (N, K), (raw mask, raw values)) for source attributes a (N, K)."""
        b = a.clone()
        edited = torch.zeros_like(a, dtype=torch.bool)
        if self.label_mode == "single" and edit.targets:
            b.zero_()
        for k, v in edit.targets.items():
            b[:, k] = v
            edited[:, k] = True
            if v == 1 and self.label_mode == "multi":
                self.resolve_conflicts(b, k)
        raw_mask = torch.zeros_like(edited)
        raw = torch.zeros_like(a)
        for k, v in edit.raw.items():
            raw_mask[:, k], raw[:, k] = True, v
        return b, edited, (raw_mask, raw)

    def generate(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, edited: torch.Tensor, raw: tuple,
                 intensity: float | None = None) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _vector(self, v, n: int, like: torch.Tensor, what: str) -> torch.Tensor:
        v = torch.as_tensor(v, dtype=like.dtype, device=like.device)
        v = v.expand(n, -1) if v.ndim == 1 else v
        if v.shape != (n, self.n_attributes):
            raise UserError(f"{what}: expected ({self.n_attributes},) or ({n}, {self.n_attributes}) values of "
                            f"{', '.join(self.attribute_names)}, got {tuple(v.shape)}")
        return v

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None,
                  mode: str | None = None, attributes=None, source_attributes=None,
                  intensity: float | None = None) -> torch.Tensor:
        """Edit x's attributes (see the module docstring of ``lit_i2i.methods.stargan``)."""
        n = len(x)
        a = (self._vector(source_attributes, n, x, "source_attributes") if source_attributes is not None
             else self.estimate_attributes(x))
        if attributes is not None:
            b = self._vector(attributes, n, x, "attributes")
            edited = b != a
            raw = (torch.zeros_like(edited), torch.zeros_like(b))
        else:
            edit = self.edit_for(direction, mode)
            if edit.flip_source and source_attributes is None and self.label_mode == "multi":
                a = a.clone()
                for k, v in edit.targets.items():
                    a[:, k] = 1 - v
            b, edited, raw = self.apply_edit(a, edit)
        return self.generate(x, a, b, edited, raw, intensity)

    # ------------------------------------------------------------------ grids
    def grid_targets(self, a: torch.Tensor) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """The official sample columns: (name, target b, edited mask) per attribute flipped (StarGAN: hair
        colours set to 1), or per class (single-label)."""
        cols = []
        for k, name in enumerate(self.attribute_names):
            edited = torch.zeros_like(a, dtype=torch.bool)
            edited[:, k] = True
            if self.label_mode == "single":
                b = torch.zeros_like(a)
                b[:, k] = 1
            else:
                b = a.clone()
                b[:, k] = 1 if (self.conflict_rules == "stargan" and name in HAIR) else 1 - a[:, k]
                self.resolve_conflicts(b, k)
            cols.append((name, b, edited))
        return cols

    @torch.no_grad()
    def attribute_grid(self, x: torch.Tensor, source_attributes=None) -> dict[str, torch.Tensor]:
        """``{"input": x, ("rec": G(x, a),) <attribute>: x with that attribute flipped, ...}``."""
        a = (self._vector(source_attributes, len(x), x, "source_attributes") if source_attributes is not None
             else self.estimate_attributes(x))
        none = (torch.zeros_like(a, dtype=torch.bool), torch.zeros_like(a))
        out = {"input": x}
        if self.grid_reconstruction:
            out["rec"] = self.generate(x, a, a, none[0], none)
        for name, b, edited in self.grid_targets(a):
            out[name if name not in out else f"{name}_"] = self.generate(x, a, b, edited, none)
        return out

    @torch.no_grad()
    def slider_grid(self, x: torch.Tensor, attribute: str, values=(-1.0, -0.5, 0.0, 0.5, 1.0),
                    source_attributes=None) -> dict[str, torch.Tensor]:
        """``{"input": x, "<attribute>=<v>": x with that attribute's input set to v, ...}``: the official
        ``test_slide`` grid (AttGAN: values in [-2, 2] of 2b - 1; STGAN: of b's input; StarGAN: of c)."""
        out = {"input": x}
        for v in values:
            out[f"{attribute}={v:g}"] = self.translate(x, mode=f"slide:{attribute}={v}",
                                                      source_attributes=source_attributes)
        return out

    @torch.no_grad()
    def visuals(self, batch):
        x, a = self.parse_batch(batch, grid=True)
        return self.attribute_grid(x, a)


class StarGANDecay:
    """The learning-rate multiplier after ``step`` iterations (a class, so that the scheduler checkpoints)."""

    def __init__(self, num_iters: int, num_iters_decay: int, lr_update_step: int, rule: str = "official"):
        if rule not in LR_DECAYS:
            raise ValueError(f"lr_decay must be one of {', '.join(LR_DECAYS)}, got {rule!r}")
        self.num_iters, self.num_iters_decay = num_iters, num_iters_decay
        self.lr_update_step, self.rule = lr_update_step, rule

    def __call__(self, step: int) -> float:
        start = self.num_iters - self.num_iters_decay
        drops = max(0, step // self.lr_update_step - start // self.lr_update_step) if step > start else 0
        size = 1 / self.num_iters_decay if self.rule == "official" else self.lr_update_step / self.num_iters_decay
        return max(0.0, 1.0 - drops * size)


class StarGAN(AttributeEditor):
    method_name = "stargan"
    generators = {"AtoB": "G", "BtoA": "G"}

    def __init__(self, attributes: list[str] | None = None, label_mode: str = "multi",
                 edits: dict[str, str] | None = None, image_size: int = 128, channels: int = 3,
                 g_conv_dim: int = 64, d_conv_dim: int = 64, g_repeat_num: int = 6, d_repeat_num: int = 6,
                 lambda_cls: float = 1.0, lambda_rec: float = 10.0, lambda_gp: float = 10.0,
                 n_critic: int = 5, g_lr: float = 1e-4, d_lr: float = 1e-4, beta1: float = 0.5, beta2: float = 0.999,
                 num_iters: int = 200000, num_iters_decay: int = 100000, lr_update_step: int = 1000,
                 lr_decay: str = "official"):
        super().__init__(lr_policy="constant", lr_interval="step")
        self.save_hyperparameters()
        self.init_attributes(list(attributes or CELEBA5), label_mode, edits, image_size, channels)
        if n_critic < 1:
            raise ValueError(f"n_critic must be at least 1, got {n_critic}")
        StarGANDecay(num_iters, num_iters_decay, lr_update_step, lr_decay)  # validates lr_decay
        c = self.n_attributes
        self.G = StarGenerator(g_conv_dim, c, g_repeat_num, channels)
        self.D = StarDiscriminator(image_size, d_conv_dim, c, d_repeat_num, channels)

    def end_of_batch(self) -> None:
        # both rates follow the rule every iteration, also before G's first update (iteration n_critic - 1):
        # PyTorch's warning about a scheduler stepped before its optimizer does not apply to a LambdaLR
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            super().end_of_batch()

    def build_optimizers(self):
        h = self.hparams
        return {"D": torch.optim.Adam(self.D.parameters(), h.d_lr, (h.beta1, h.beta2)),
                "G": torch.optim.Adam(self.G.parameters(), h.g_lr, (h.beta1, h.beta2))}

    def configure_optimizers(self):
        h = self.hparams
        opts = self.make_optimizers()
        rule = StarGANDecay(h.num_iters, h.num_iters_decay, h.lr_update_step, h.lr_decay)
        return list(opts.values()), [torch.optim.lr_scheduler.LambdaLR(o, rule) for o in opts.values()]

    # ------------------------------------------------------------------ losses
    def classification_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The official ``classification_loss``: BCE summed over attributes / batch (CelebA), or CE (RaFD)."""
        logits = logits.float()
        if self.label_mode == "single":
            return F.cross_entropy(logits, target.argmax(1))
        return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="sum") / logits.size(0)

    def discriminator_losses(self, x, c_org, fake) -> dict[str, torch.Tensor]:
        out_src, out_cls = self.D(x)
        fake = fake.detach()
        return {"D_real": -out_src.float().mean(), "D_cls": self.classification_loss(out_cls, c_org),
                "D_fake": self.D(fake)[0].float().mean(),
                "D_gp": gradient_penalty(lambda t: self.D(t)[0], x, fake, weight=1.0)}

    def generator_losses(self, x, c_org, c_trg, fake) -> dict[str, torch.Tensor]:
        out_src, out_cls = self.D(fake)
        rec = self.G(fake, c_org)
        return {"G_fake": -out_src.float().mean(), "G_cls": self.classification_loss(out_cls, c_trg),
                "G_rec": (x.float() - rec.float()).abs().mean()}

    def g_turn(self, iteration: int) -> bool:
        """Whether iteration ``iteration`` (0-based) also updates G: ``(i + 1) % n_critic == 0``."""
        return (iteration + 1) % self.hparams.n_critic == 0

    def training_step(self, batch, batch_idx):
        h = self.hparams
        x, c_org = self.parse_batch(batch)
        c_trg = c_org[torch.randperm(len(c_org)).to(c_org.device)]
        g_turn = self.g_turn(self.iteration)
        with torch.set_grad_enabled(g_turn):
            fake = self.G(x, c_trg)
        d = self.discriminator_losses(x, c_org, fake)
        loss_D = d["D_real"] + d["D_fake"] + h.lambda_cls * d["D_cls"] + h.lambda_gp * d["D_gp"]
        self.step("D", loss_D)
        logs = {"D": loss_D, **d}
        if g_turn:
            g = self.generator_losses(x, c_org, c_trg, fake)
            loss_G = g["G_fake"] + h.lambda_rec * g["G_rec"] + h.lambda_cls * g["G_cls"]
            self.step("G", loss_G)
            logs.update({"G": loss_G, **g})
        self.log_losses(logs)

    # ------------------------------------------------------------------ translation
    def attribute_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.D(x)[1]

    def generate(self, x, a, b, edited, raw, intensity=None):
        raw_mask, raw_values = raw
        return self.G(x, torch.where(raw_mask, raw_values, b))
