"""``lit-i2i``: the one command.

``fit``, ``validate``, ``test`` and ``predict`` are Lightning's own ``LightningCLI`` subcommands
(jsonargparse): ``--config experiments/....yaml``, ``--print_config``, dotted overrides such as
``--trainer.max_steps 10`` or ``--data.init_args.root DIR``; the model and data classes are chosen by
``class_path`` in the config. Every run always gets, as forced callbacks with their own option
groups: ``checkpoint`` (ModelCheckpoint: last + periodic, in ``<run>/checkpoints``), ``grids``
(ImageGrid), ``summary`` (RunSummary: ``<run>/metrics.json``) and ``metrics`` (TranslationMetrics:
FID/KID/accuracy; off unless ``--metrics.metrics`` names some). The run folder is
``--trainer.default_root_dir``.

Extra subcommands, dispatched before LightningCLI: ``translate``, ``evaluate``,
``train-classifier``, ``bench``. Bad input (a ``UserError``) is printed as one line, without a
traceback, and the exit status is 2.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from lit_i2i.errors import UserError

EXTRA_COMMANDS = {
    "translate": "translate images with a trained checkpoint",
    "evaluate": "evaluate a checkpoint (FID, KID, accuracy, ...) and write metrics.json",
    "train-classifier": "train the built-in digit classifiers used by the metrics",
    "bench": "benchmarks (bench eval, bench train)",
}


def import_class(path: str):
    mod, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise UserError(f"cannot import class {path!r}: {e}") from e


def _build_cli_class():
    from pytorch_lightning import LightningDataModule
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.cli import LightningCLI, SaveConfigCallback

    from datamodules.base import TranslationDataModule
    from lit_i2i.core.callbacks import ImageGrid, RunSummary
    from lit_i2i.core.loggers import WandbLogger
    from lit_i2i.core.module import TranslationModule

    class ConfigToLoggerAndCheckpoint(SaveConfigCallback):
        """Saves config.yaml (Lightning), sends the resolved config and tags to every logger, and puts
        the config into each checkpoint so that ``translate``/``evaluate`` can rebuild the run."""

        def save_config(self, trainer, pl_module, stage) -> None:
            cfg = self.config.as_dict()
            method = getattr(pl_module, "method_name", type(pl_module).__name__)
            dataset = getattr(trainer.datamodule, "name", "data")
            for logger in trainer.loggers:
                logger.log_hyperparams({"config": cfg, "method": method, "dataset": dataset})
                if isinstance(logger, WandbLogger):
                    run = logger.experiment
                    try:
                        run.tags = tuple(dict.fromkeys([*(run.tags or ()), method, dataset]))
                    except Exception:  # disabled runs have no tags
                        pass

        def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
            cfg = self.config.as_dict()
            checkpoint["lit_i2i_config"] = {"model": cfg.get("model"), "data": cfg.get("data")}

    class LitI2ICLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": -1,
                                 "checkpoint.every_n_epochs": 10, "checkpoint.filename": "{epoch:04d}-{step:08d}",
                                 # save at epoch ends even when validation runs rarely or never
                                 "checkpoint.save_on_train_epoch_end": True})
            parser.link_arguments("trainer.default_root_dir", "checkpoint.dirpath",
                                  compute_fn=lambda d: str(Path(d or ".") / "checkpoints"))
            parser.add_lightning_class_args(ImageGrid, "grids")
            parser.add_lightning_class_args(RunSummary, "summary")
            try:
                from lit_i2i.metrics import TranslationMetrics
            except ImportError:  # the metrics package is optional for the CLI's own tests
                TranslationMetrics = None
            if TranslationMetrics is not None:
                parser.add_lightning_class_args(TranslationMetrics, "metrics")

        def before_instantiate_classes(self) -> None:
            cfg = self.config[self.subcommand] if self.subcommand else self.config
            root = cfg.trainer.default_root_dir or "runs/default"
            cfg.trainer.default_root_dir = root
            logger = cfg.trainer.get("logger")
            if logger is None or logger is True:  # the default logger: our WandbLogger
                from jsonargparse import Namespace

                cfg.trainer.logger = Namespace(class_path="lit_i2i.core.loggers.WandbLogger",
                                               init_args=Namespace(save_dir=root))
            elif isinstance(logger, list) or logger is False:
                pass
            elif getattr(logger, "init_args", None) is not None and "save_dir" in logger.init_args:
                if logger.init_args.save_dir in (None, ".", ""):
                    logger.init_args.save_dir = root
            if self.subcommand == "fit" and not cfg.get("ckpt_path"):
                ckpts = sorted((Path(root) / "checkpoints").glob("*.ckpt"))
                if ckpts:
                    raise UserError(
                        f"run folder {root} already holds checkpoints ({ckpts[0].name}, ...) from an earlier run; "
                        "continue it with --ckpt_path last, or choose a new --trainer.default_root_dir")

        def before_fit(self) -> None:
            self.datamodule.setup("fit")  # validates the data before anything is logged or trained

    return LitI2ICLI, ConfigToLoggerAndCheckpoint, TranslationModule, TranslationDataModule, LightningDataModule


def run_lightning_cli(argv: list[str] | None):
    """LightningCLI on ``argv`` (None: on sys.argv, which avoids Lightning's args-vs-argv warning)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    LitI2ICLI, SaveCB, TranslationModule, TranslationDataModule, _ = _build_cli_class()
    # main(argv) called from a script (benchmarks, tests) passes its own args while sys.argv holds the
    # script's: Lightning warns about that, but the args given are the ones meant.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    return LitI2ICLI(TranslationModule, TranslationDataModule, subclass_mode_model=True, subclass_mode_data=True,
                     save_config_callback=SaveCB, save_config_kwargs={"overwrite": True}, args=argv,
                     auto_configure_optimizers=False,
                     parser_kwargs={"description": "lit-i2i: image-to-image translation on PyTorch Lightning"})


def _print_help() -> None:
    print("usage: lit-i2i {fit,validate,test,predict,translate,evaluate,train-classifier,bench} ...\n")
    print("Lightning subcommands (each takes --config FILE, --print_config, dotted overrides; see `lit-i2i fit --help`):")
    for name, what in (("fit", "train a method"), ("validate", "run the validation loop"),
                       ("test", "run the test loop (metrics at test time)"), ("predict", "run the predict loop")):
        print(f"  {name:<17} {what}")
    print("\nextra subcommands (`lit-i2i CMD --help`):")
    for name, what in EXTRA_COMMANDS.items():
        print(f"  {name:<17} {what}")
    print("\nquickstart: lit-i2i fit --config experiments/quickstart.yaml")


def main(argv: list[str] | None = None) -> int:
    from_sys = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help"):
            _print_help()
            return 0
        if argv[0] in EXTRA_COMMANDS:
            from lit_i2i import commands

            return int(getattr(commands, argv[0].replace("-", "_"))(argv[1:]) or 0)
        run_lightning_cli(None if from_sys else argv)
        return 0
    except UserError as e:
        print(f"lit-i2i: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lit-i2i: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a UserError wrapped by jsonargparse/Lightning (e.g. raised in a datamodule's __init__)
        cause = _user_error_in_chain(e)
        if cause is None:
            raise
        print(f"lit-i2i: error: {cause}", file=sys.stderr)
        return 2


def _user_error_in_chain(e: BaseException) -> UserError | None:
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, UserError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
