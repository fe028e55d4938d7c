"""``lit-i2i``: the one command.

``fit``, ``validate``, ``test`` and ``predict`` are Lightning's own ``LightningCLI`` subcommands
(jsonargparse): ``--config experiments/....yaml``, ``--print_config``, dotted overrides such as
``--trainer.max_steps 10`` or ``--data.init_args.root DIR``; the model and data classes are chosen by
``class_path`` in the config. Every run always gets, as forced callbacks with their own option
groups: ``checkpoint`` (ModelCheckpoint, as ``core.callbacks.Checkpoint``: last + periodic, in
``<run>/checkpoints``, last.ckpt also at the end of training), ``grids``
(ImageGrid), ``summary`` (RunSummary: ``<run>/metrics.json``) and ``metrics`` (TranslationMetrics:
FID/KID/accuracy; off unless ``--metrics.metrics`` names some). The run folder is
``--trainer.default_root_dir``.

Extra subcommands, dispatched before LightningCLI: ``translate``, ``evaluate``,
``train-classifier``, ``bench``. Bad input (a ``UserError``, an option jsonargparse refuses) is
printed as one line, without a traceback or a usage dump, and the exit status is 2; options must be
spelled in full (no argparse prefix abbreviations) and a misspelt one gets a "did you mean". Ctrl+C
during ``fit`` stops at the end of the batch and saves ``last.ckpt`` (exit 130), as SIGTERM does
(exit 143; Lightning's own SIGTERM handling); ``--ckpt_path`` is checked before anything is loaded
into the run: a file that is not a checkpoint, holds code-running objects, or belongs to another
method is refused (``lit_i2i.core.safe_load``; Lightning then loads it with ``weights_only=True``).
A ``validate`` / ``test`` run writes ``config_<stage>.yaml`` and ``metrics_<stage>.json``, never
over the fit's ``config.yaml`` and ``metrics.json``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import sys
from argparse import ArgumentError, ArgumentParser
from pathlib import Path

from lit_i2i.errors import UserError, one_line

#: LightningCLI's subcommands (each gets its own parser, hence its own copy of the parser options)
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

EXTRA_COMMANDS = {
    "translate": "translate images with a trained checkpoint",
    "evaluate": "evaluate a checkpoint (FID, KID, accuracy, ...) and write metrics.json",
    "train-classifier": "train the digit classifiers used by the metrics (or a CelebA attribute classifier: --celeba)",
    "bench": "benchmarks (bench train, bench data, bench eval)",
    "reproduce": "reproduce a paper table from its table file (experiments/tables/*.yaml)",
    "data": "look at data: `data preview --domain NAME` writes a grid of a domain's samples",
}


class CommandParser(ArgumentParser):
    """argparse for the extra subcommands, as strict as the Lightning ones: exact option names (no
    prefix abbreviations), and a bad option is one UserError line with a "did you mean"."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str):
        raise UserError(argument_error_line(message, self, self.prog.removeprefix("lit-i2i ")))


def instantiate(spec: dict):
    """``class_path`` / ``init_args`` (a config section) -> the object."""
    cls = import_class(spec["class_path"])
    return cls(**(spec.get("init_args") or {}))


def import_class(path: str):
    mod, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise UserError(f"cannot import class {path!r}: {e}") from e


def _build_cli_class():
    from pytorch_lightning import LightningDataModule
    from pytorch_lightning.cli import LightningCLI, SaveConfigCallback

    from datamodules.base import TranslationDataModule
    from lit_i2i.core.callbacks import Checkpoint, ImageGrid, RunSummary, SaveOnSignal
    from lit_i2i.core.fast import FastPaths
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

        def setup(self, trainer, pl_module, stage) -> None:
            # fit owns config.yaml; validate/test/predict write their own beside it
            stage = getattr(stage, "value", stage)
            self.config_filename = "config.yaml" if stage == "fit" else f"config_{stage}.yaml"
            super().setup(trainer, pl_module, stage)

        def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
            cfg = self.config.as_dict()
            checkpoint["lit_i2i_config"] = {"model": cfg.get("model"), "data": cfg.get("data")}

    class LitI2ICLI(LightningCLI):
        def parse_arguments(self, parser, args) -> None:
            try:
                super().parse_arguments(parser, args)
            except ArgumentError as e:
                argv = list(sys.argv[1:] if args is None else args)
                sub = next((a for a in argv if a in self._subcommand_parsers), None)
                raise UserError(argument_error_line(str(e), self._subcommand_parsers.get(sub, parser), sub)) from None

        def _parse_ckpt_path(self) -> None:
            """Checks ``--ckpt_path`` (one line for a missing, unreadable, unsafe or other method's
            checkpoint) before Lightning reads its hyper-parameters into the config."""
            sub = self.config.get("subcommand")
            cfg = self.config[sub] if sub else None
            path = resolve_ckpt_path(cfg) if cfg is not None else None
            if path is None:
                return
            from lit_i2i.core.safe_load import checkpoint_method, load_checkpoint

            theirs, ours = checkpoint_method(load_checkpoint(path, "--ckpt_path")), cfg.model.class_path
            if theirs and ours and theirs != ours and _class_or_name(theirs) is not _class_or_name(ours):
                raise UserError(f"--ckpt_path: {path} is a checkpoint of {theirs.rpartition('.')[2]} ({theirs}), but "
                                f"this run's model is {ours.rpartition('.')[2]} ({ours}); give that method's config "
                                "(--config) or a checkpoint of this one")
            try:
                super()._parse_ckpt_path()
            except ArgumentError as e:
                raise UserError(f"--ckpt_path: the hyper-parameters stored in {path} do not fit {ours}: "
                                f"{argument_error_line(str(e))}") from None

        def add_arguments_to_parser(self, parser) -> None:
            parser.add_lightning_class_args(Checkpoint, "checkpoint")  # ModelCheckpoint, last.ckpt also at the end
            parser.set_defaults({"checkpoint.save_last": True, "checkpoint.save_top_k": -1,
                                 "checkpoint.every_n_epochs": 10, "checkpoint.filename": "{epoch:04d}-{step:08d}",
                                 # a continued run (--ckpt_path last) writes last.ckpt again, never last-v1.ckpt
                                 # (fit refuses a folder with checkpoints otherwise, so no name is ever reused)
                                 "checkpoint.enable_version_counter": False,
                                 # save at epoch ends even when validation runs rarely or never
                                 "checkpoint.save_on_train_epoch_end": True})
            parser.link_arguments("trainer.default_root_dir", "checkpoint.dirpath",
                                  compute_fn=lambda d: str(Path(d or ".") / "checkpoints"))
            parser.add_lightning_class_args(ImageGrid, "grids")
            parser.add_lightning_class_args(RunSummary, "summary")
            parser.add_lightning_class_args(SaveOnSignal, "on_signal")
            parser.add_lightning_class_args(FastPaths, "fast")
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
            if "weights_only" in cfg:  # Trainer.fit/validate/test/predict(weights_only=...): the resume path too
                if cfg.weights_only is False:
                    raise UserError("--weights_only false: lit-i2i loads checkpoints with weights_only=True only "
                                    "(its own checkpoints hold tensors and plain data)")
                cfg.weights_only = True
            if self.subcommand == "fit" and not cfg.get("ckpt_path"):
                ckpts = sorted(checkpoint_dir(cfg).glob("*.ckpt"))
                if ckpts:
                    raise UserError(
                        f"run folder {root} already holds checkpoints ({ckpts[0].name}, ...) from an earlier run; "
                        "continue it with --ckpt_path last, or choose a new --trainer.default_root_dir")

        def instantiate_classes(self) -> None:
            from lightning_fabric.utilities.exceptions import MisconfigurationException

            try:
                super().instantiate_classes()
            except MisconfigurationException as e:  # Lightning refusing a combination of options: one line
                raise UserError(misconfiguration_line(e)) from None

        def before_fit(self) -> None:
            from lit_i2i.core.input_check import check_model_fits_data

            self.datamodule.setup("fit")  # validates the data before anything is logged or trained
            check_model_fits_data(self.model, self.datamodule)  # channels and sizes against the networks

    return LitI2ICLI, ConfigToLoggerAndCheckpoint, TranslationModule, TranslationDataModule, LightningDataModule


def _class_or_name(path: str):
    """The class ``path`` names (two spellings of one class compare equal), or ``path`` itself."""
    try:
        return import_class(path)
    except UserError:
        return path


def misconfiguration_line(e: Exception) -> str:
    """The user's line for a ``MisconfigurationException`` that Lightning raised while the CLI built the
    checkpoint callback or the Trainer from the options, naming the option group it came from."""
    text = " ".join(str(e).split())
    if "every_n_train_steps" in text:  # ModelCheckpoint: one save schedule only; the suite sets every_n_epochs
        return ("--checkpoint.every_n_train_steps, --checkpoint.every_n_epochs and --checkpoint.train_time_interval "
                "are exclusive (the config or the suite's default sets --checkpoint.every_n_epochs: add "
                "--checkpoint.every_n_epochs 0 to save by steps instead); Lightning: " + text)
    return f"--trainer options: {text}"


def checkpoint_dir(cfg) -> Path:
    """The run's checkpoint folder (``--checkpoint.dirpath``, linked to ``<default_root_dir>/checkpoints``)."""
    dirpath = cfg.get("checkpoint.dirpath") if "checkpoint" in cfg else None
    return Path(dirpath or Path(cfg.trainer.default_root_dir or "runs/default") / "checkpoints")


def resolve_ckpt_path(cfg) -> Path | None:
    """The file ``--ckpt_path`` names (``last``: the newest ``last*.ckpt`` of the run, as Lightning picks
    it); None when there is none to check (not given, ``last`` with none yet, ``best``/``hpc``/registry/URL)."""
    ckpt = cfg.get("ckpt_path")
    if not ckpt:
        return None
    ckpt = str(ckpt)
    if ckpt == "last":
        found = [p for p in checkpoint_dir(cfg).glob("last*.ckpt") if re.fullmatch(r"last(-v\d+)?\.ckpt", p.name)]
        return max(found, key=lambda p: p.stat().st_mtime) if found else None
    if ckpt in ("best", "hpc") or ckpt.startswith("registry") or "://" in ckpt:
        return None
    path = Path(ckpt).expanduser()
    if not path.is_file():
        raise UserError(f"--ckpt_path: checkpoint not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    return path


def argument_error_line(message: str, parser=None, subcommand: str | None = None) -> str:
    """One line for a jsonargparse/argparse error, with a "did you mean" where a close name exists.

    ``message`` is jsonargparse's (``unrecognized arguments: --trainer.max_stepz 2``, or ``Parser key
    "model": ... Problem with given class_path 'X': Option 'ngff' is not accepted ...``); ``parser`` gives
    the valid option names.
    """
    lines = [ln.strip().lstrip("- ").strip() for ln in message.splitlines()]
    lines = [ln for ln in lines if ln]
    head = lines[0] if lines else message
    help_hint = f" (see `lit-i2i {subcommand} --help`)" if subcommand else ""
    unknown = re.match(r"unrecognized arguments: (.*)", head)
    if unknown:
        options = [s for a in getattr(parser, "_actions", []) for s in a.option_strings if s.startswith("--")]
        given = [t.split("=", 1)[0] for t in unknown.group(1).split() if t.startswith("--")]
        hints = [f"did you mean {m}?" for t in given if (m := _close(t, options))]
        return "; ".join([f"unknown option: {unknown.group(1)}", *hints]) + help_hint
    group = re.search(r"Group '([^']+)' does not accept option '([^']+)'", message)
    if group:  # a key of a config file
        options = [s for a in getattr(parser, "_actions", []) for s in a.option_strings if s.startswith("--")]
        match = _close(f"--{group.group(1)}.{group.group(2)}", options)
        return (f"unknown option {group.group(1)}.{group.group(2)} (in a config file)"
                + (f"; did you mean {match.removeprefix('--')}?" if match else "") + help_hint)
    keyed = re.match(r'Parser key "([^"]+)":\s*(.*)', head)
    if not keyed:
        return head + help_hint
    key, rest = keyed.groups()
    noise = ("Does not validate against any of the Union subtypes", "Subtypes:", "Errors:", "Given value",
             "Expected a <class 'NoneType'>", "Expected a path but", "Expected a <class 'collections.abc.Iterable'>",
             "Expected a <class 'bool'>")
    problem = next((i for i, ln in enumerate(lines) if ln.startswith("Problem with given class_path")), None)
    if problem is not None and problem + 1 < len(lines):
        class_path = re.search(r"'([^']+)'", lines[problem])
        return _class_problem(key, lines[problem + 1], class_path.group(1) if class_path else "") + help_hint
    details = [rest] if rest else [ln for ln in lines[1:] if not ln.startswith(noise)]
    return f"--{key}: {details[0] if details else head}" + help_hint


def _close(name: str, names) -> str:
    match = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return match[0] if match else ""


def _class_problem(key: str, detail: str, class_path: str) -> str:
    """The line for a class given to option ``key``: an init argument it does not take, or a class
    its module does not have, with the closest existing name."""
    option = re.match(r"Option '([^']+)' is not accepted", detail)
    if option:
        try:
            names = inspect.signature(import_class(class_path)).parameters
        except (UserError, TypeError, ValueError):
            names = ()
        match = _close(option.group(1), names)
        return (f"--{key}.init_args.{option.group(1)}: {class_path.rpartition('.')[2]} ({class_path}) has no such "
                "option" + (f"; did you mean --{key}.init_args.{match}?" if match else ""))
    attr = re.match(r"module '([^']+)' has no attribute '([^']+)'", detail)
    if attr:
        try:
            names = [n for n in dir(importlib.import_module(attr.group(1))) if not n.startswith("_")]
        except ImportError:
            names = []
        match = _close(attr.group(2), names)
        return f"--{key}: no class {class_path}" + (f"; did you mean {attr.group(1)}.{match}?" if match else "")
    return f"--{key}: {detail} ({class_path})"


def quiet_console() -> None:
    """Silences what every run printed that a user cannot act on: Lightning's litlogger tip and
    LeafSpec FutureWarning (a torch/Lightning version mismatch inside Lightning), ModelCheckpoint's
    manual-optimization notice."""
    import logging
    import warnings

    def no_tip(record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(no_tip)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # main(argv) called from a script (benchmarks, tests) passes its own args while sys.argv holds the
    # script's: Lightning warns about that, but the args given are the ones meant.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    # every manual-optimization run with step checkpoints: the state AFTER the step is the one a resume needs
    # (the suite's checkpoints are saved after the batch's bookkeeping, see TranslationModule.end_of_batch)
    warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization and every_n_train_steps")


def run_lightning_cli(argv: list[str] | None):
    """LightningCLI on ``argv`` (None: on sys.argv, which avoids Lightning's args-vs-argv warning)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    LitI2ICLI, SaveCB, TranslationModule, TranslationDataModule, _ = _build_cli_class()
    quiet_console()
    # errors are raised (and printed as one line by main), not a usage dump; no prefix abbreviations
    strict = {"exit_on_error": False, "allow_abbrev": False}
    parser_kwargs = {"description": "lit-i2i: image-to-image translation on PyTorch Lightning", **strict,
                     **{sub: dict(strict) for sub in LIGHTNING_COMMANDS}}
    return LitI2ICLI(TranslationModule, TranslationDataModule, subclass_mode_model=True, subclass_mode_data=True,
                     save_config_callback=SaveCB, save_config_kwargs={"overwrite": True}, args=argv,
                     auto_configure_optimizers=False, parser_kwargs=parser_kwargs)


def _finish_wandb(exit_code: int) -> None:
    """Ends a W&B run now rather than at interpreter exit, where wandb prints its footer with ANSI
    colour codes even when stderr is not a terminal."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=exit_code)


def _print_help() -> None:
    print("usage: lit-i2i {fit,validate,test,predict,translate,evaluate,train-classifier,bench,reproduce,data} ...\n")
    print("Lightning subcommands (each takes --config FILE, --print_config, dotted overrides; see `lit-i2i fit --help`):")
    for name, what in (("fit", "train a method"), ("validate", "run the validation loop"),
                       ("test", "run the test loop (metrics at test time)"), ("predict", "run the predict loop")):
        print(f"  {name:<17} {what}")
    print("\nextra subcommands (`lit-i2i CMD --help`):")
    for name, what in EXTRA_COMMANDS.items():
        print(f"  {name:<17} {what}")
    print("\nquickstart: lit-i2i fit --config experiments/quickstart.yaml")


def main(argv: list[str] | None = None) -> int:
    code = 1
    try:
        code = _main(argv)
        return code
    finally:
        _finish_wandb(code)


def _main(argv: list[str] | None) -> int:
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from_sys = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help"):
            _print_help()
            return 0
        if argv[0] == "bench":
            from lit_i2i.bench import main as bench_main

            return int(bench_main(argv[1:]) or 0)
        if argv[0] in EXTRA_COMMANDS:
            from lit_i2i import commands

            return int(getattr(commands, argv[0].replace("-", "_"))(argv[1:]) or 0)
        if argv[0] not in LIGHTNING_COMMANDS and not argv[0].startswith("-"):
            match = difflib.get_close_matches(argv[0], [*LIGHTNING_COMMANDS, *EXTRA_COMMANDS], n=1)
            raise UserError(f"unknown command {argv[0]!r}" + (f"; did you mean {match[0]}?" if match else "")
                            + " (see `lit-i2i --help`)")
        run_lightning_cli(None if from_sys else argv)
        return 0
    except UserError as e:
        print(f"lit-i2i: error: {one_line(e)}", file=sys.stderr)
        return 2
    except ArgumentError as e:  # a parse jsonargparse raised outside LitI2ICLI.parse_arguments
        print(f"lit-i2i: error: {argument_error_line(str(e))}", file=sys.stderr)
        return 2
    except SIGTERMException as e:  # SIGTERM, or a first Ctrl+C, during fit: SaveOnSignal saved last.ckpt
        return e.code if isinstance(e.code, int) and e.code else 143
    except KeyboardInterrupt:
        print("lit-i2i: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a UserError wrapped by jsonargparse/Lightning (e.g. raised in a datamodule's __init__)
        cause = _user_error_in_chain(e)
        if cause is None:
            raise
        print(f"lit-i2i: error: {one_line(cause)}", file=sys.stderr)
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
