"""``TranslationMetrics``: the evaluation callback every run uses (FID, KID, accuracy, ... per direction).

At the end of validation (every ``every_n_epochs`` epochs, never during the sanity check) and at the
end of testing it runs the :class:`~lit_i2i.metrics.evaluate.Evaluator` on ``trainer.datamodule`` and
logs ``val/<metric>_<direction>`` (``test/...``), e.g. ``val/fid_AtoB``, ``val/kid_AtoB``,
``val/acc_AtoB``, ``val/fid_digits_AtoB``: the same names for every method. The latest values are
kept in :attr:`results` (``{"val/fid_AtoB": ...}``) for the run summary (metrics.json).

The extractors live in the callback's evaluator, not in the LightningModule: they are frozen, in no
optimizer, and not in checkpoints (the callback saves no state). Under DDP every rank evaluates its
block of the fixed evaluation set and the outputs are gathered once, so all ranks log the same value
(``sync_dist=True`` averages identical numbers).

YAML (the CLI adds it as the ``metrics`` option group)::

    metrics:
      metrics: [acc, fid_digits, kid_digits]
      directions: [AtoB, BtoA]
      every_n_epochs: 10

or as a plain callback: ``trainer.callbacks: [{class_path: lit_i2i.metrics.TranslationMetrics,
init_args: {metrics: [fid, kid]}}]``.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info

from lit_i2i.metrics.evaluate import Evaluator


class TranslationMetrics(pl.Callback):
    """Evaluate translations with FID/KID/accuracy/... at validation and test end.

    Args:
        metrics: names from :data:`lit_i2i.metrics.evaluate.METRICS` (``fid``, ``kid``, ``mfid``,
            ``fid_digits``, ``kid_digits``, ``mfid_digits``, ``acc``, ``attr_prob``, ``attr_success``,
            ``content``, ``style``, ``psnr``, ``ssim``, ``lpips``, ``cluster_acc``, ``nmi``, ``ari``);
            empty: the callback does nothing.
        directions: ``AtoB`` (translate A, compare with real B), ``BtoA``, or ``<X>to<Y>`` for
            multi-domain data.
        every_n_epochs: evaluate at the end of validation every N epochs.
        max_samples: the fixed evaluation set: the first N images of each domain's eval split
            (None: all of them).
        split: the eval split read (``test``; ``val`` where the data has one).
        batch_size: images per translate/extractor call.
        inception_weights: torch-fidelity InceptionV3 weights file (else $LIT_I2I_INCEPTION_WEIGHTS,
            else the torch hub cache, else a download).
        vgg, vgg_weights: VGG of content/style (``vgg19`` or ``vgg16``) and its ImageNet weights file
            (else $LIT_I2I_VGG_WEIGHTS, the hub cache, a download); ``random``: a randomly initialised
            VGG from a fixed seed instead (no file; random-feature stand-ins, not comparable with
            published numbers).
        classifier: direction -> classifier of the target domain for ``acc``/``*_digits``: a built-in
            one (``digits``, ``colored-digits``) or ``package.module:factory``. Default: chosen from
            the datamodule's domain names (``dm.b`` for AtoB, ``dm.a`` for BtoA).
        attribute_classifier: direction -> binary classifier for ``attr_*`` (``accessory``, or
            ``package.module:factory@CLASS``). Default: from the datamodule's domain names.
        classifier_seed: training seed of the built-in classifiers.
        reference: pass the aligned real target image as ``reference`` to ``translate`` (methods
            that need one): true, or a list of the directions that take one.
        translate: direction -> keyword arguments of ``translate`` (e.g. ``{"BtoA": {"mode": "intersection"}}``).
        mask_threshold: the threshold of ``mask_iou`` / ``mask_area`` (default: the model's ``removal_threshold``).
        kid_subsets, kid_subset_size: KID's subsets and their size (capped at the sample count).
        cache_dir: real-feature cache (default ``~/.cache/lit_i2i/features``); ``cache: false`` disables it.
        on_validation, on_test: evaluate at those stages.
        at_fit_end: evaluate once more when training ends after the last evaluation (a run that stops
            mid-epoch, by ``max_steps`` or a method's own length such as OST's ``phase2_steps``, or whose
            last epoch is not a multiple of ``every_n_epochs``); logged as ``val/...``.
    """

    def __init__(self, metrics: list[str] | None = None, directions: list[str] | None = None, every_n_epochs: int = 1,
                 max_samples: int | None = 1000, split: str = "test", batch_size: int = 64,
                 inception_weights: str | None = None, vgg: str = "vgg19", vgg_weights: str | None = None,
                 classifier: dict[str, str] | None = None, attribute_classifier: dict[str, str] | None = None,
                 classifier_seed: int = 0, reference: bool | list[str] = False, kid_subsets: int = 100,
                 kid_subset_size: int = 1000, cache_dir: str | None = None, cache: bool = True,
                 on_validation: bool = True, on_test: bool = True, at_fit_end: bool = True,
                 translate: dict[str, dict] | None = None, mask_threshold: float | None = None):
        super().__init__()
        self.metrics = list(metrics or [])
        self.directions = list(directions or ["AtoB"])
        self.every_n_epochs = max(1, int(every_n_epochs))
        self.on_validation, self.on_test, self.at_fit_end = on_validation, on_test, at_fit_end
        self._evaluated_at: int | None = None  # global step of the last evaluation during fit
        self.evaluator = Evaluator(
            self.metrics, self.directions, split=split, max_samples=max_samples, batch_size=batch_size,
            inception_weights=inception_weights, vgg=vgg, vgg_weights=vgg_weights, classifier=classifier,
            attribute_classifier=attribute_classifier, classifier_seed=classifier_seed, reference=reference,
            kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, cache_dir=cache_dir, cache=cache,
            translate=translate, mask_threshold=mask_threshold)
        self.results: dict[str, float] = {}
        self._noted: set[str] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.metrics)

    def setup(self, trainer, pl_module, stage: str) -> None:
        """Check names, directions, classifiers and weight files before any training happens."""
        if self.enabled:
            self.evaluator.plan(pl_module, trainer.datamodule)

    def evaluate(self, trainer, pl_module, stage: str, through_module: bool = True) -> dict[str, float]:
        """Run the evaluator; log through ``pl_module.log`` (or straight to the loggers where Lightning
        allows no ``self.log``, at the end of training)."""
        from lit_i2i.core.rng import same_random_state

        # the evaluation's own draws (a classifier's default init the first time, its DataLoaders' seeds, more
        # with a cold feature cache) must not move the training's random streams: a run with metrics, or one
        # continued from a checkpoint, would otherwise train on other draws than the same run without
        with same_random_state(cuda=True):
            results, notes = self.evaluator.run(pl_module, trainer.datamodule, pl_module.device)
        logged = {}
        for k, v in results.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            logged[f"{stage}/{k}"] = float(v)
            if through_module:
                pl_module.log(f"{stage}/{k}", float(v), sync_dist=True, on_step=False, on_epoch=True)
        if not through_module and trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(logged, step=trainer.global_step)
        for n in notes:
            if n not in self._noted:
                self._noted.add(n)
                rank_zero_info(f"metrics: {n}")
        self.results.update(logged)
        return logged

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not (self.enabled and self.on_validation) or trainer.sanity_checking:
            return
        fitting = trainer.state.fn == TrainerFn.FITTING  # `validate` evaluates every time
        if not fitting or (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.evaluate(trainer, pl_module, "val")
            if fitting:
                self._evaluated_at = trainer.global_step

    def on_train_end(self, trainer, pl_module) -> None:
        if self.enabled and self.on_validation and self.at_fit_end and self._evaluated_at != trainer.global_step:
            self.evaluate(trainer, pl_module, "val", through_module=False)
            self._evaluated_at = trainer.global_step

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if self.enabled and self.on_test:
            self.evaluate(trainer, pl_module, "test")
