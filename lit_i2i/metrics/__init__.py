"""Evaluation of translations, the same for every method (issue #4).

Driven only through a model's ``translate(x, direction, reference=None)`` and a datamodule's
``eval_dataset(domain, split)``:

  - :class:`TranslationMetrics` (callback): ``val/<metric>_<direction>`` and ``test/...`` during runs;
  - :func:`evaluate_model`: one evaluation of a trained model (``lit-i2i evaluate``), table + JSON;
  - :func:`load_digit_classifier`: the shipped classifiers of the built-in digit domains;
  - metric helpers (:mod:`lit_i2i.metrics.scores`): fid, kid, class_wise_fid, translation_accuracy,
    attribute_scores, content_distance, style_distance, gram_matrix, cluster_accuracy, nmi, ari,
    psnr, ssim;
  - extractors (:mod:`lit_i2i.metrics.extractors`), weight files (:mod:`lit_i2i.metrics.weights`),
    the real-feature cache (:mod:`lit_i2i.metrics.cache`), commands (:mod:`lit_i2i.metrics.commands`).
"""

from lit_i2i.metrics.callback import TranslationMetrics
from lit_i2i.metrics.classifier import DigitClassifier, load_digit_classifier, train_digit_classifier
from lit_i2i.metrics.evaluate import METRICS, Evaluator, evaluate_model
from lit_i2i.metrics.extractors import DigitExtractor, InceptionExtractor, VGGExtractor, gram_matrix
from lit_i2i.metrics.scores import (ari, attribute_scores, class_wise_fid, cluster_accuracy, content_distance, fid,
                                    kid, nmi, psnr, ssim, style_distance, translation_accuracy)
from lit_i2i.metrics.weights import resolve_weights

__all__ = [
    "TranslationMetrics", "evaluate_model", "Evaluator", "METRICS", "load_digit_classifier", "train_digit_classifier",
    "DigitClassifier", "InceptionExtractor", "VGGExtractor", "DigitExtractor", "resolve_weights", "fid", "kid",
    "class_wise_fid", "translation_accuracy", "attribute_scores", "content_distance", "style_distance", "gram_matrix",
    "cluster_accuracy", "nmi", "ari", "psnr", "ssim",
]
