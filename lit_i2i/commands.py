"""The extra subcommands of ``lit-i2i``: translate, evaluate, train-classifier, reproduce, data
(``bench`` lives in ``lit_i2i.bench``).

Each takes its own arguments (argparse) and returns an exit status; ``lit_i2i.cli.main`` dispatches
to them by name and prints any ``UserError`` as one line. Checkpoints written by ``lit-i2i fit``
carry the run's model and data config (``lit_i2i_config``), so a checkpoint alone is enough to
rebuild the model and, for ``evaluate``, its data.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lit_i2i.cli import CommandParser, instantiate
from lit_i2i.errors import UserError


def load_run(ckpt: str | Path, config: str | Path | None = None, map_location: str = "cpu"):
    """(model, data spec) from a checkpoint of ``lit-i2i fit``; ``config`` (a YAML) overrides the
    data spec stored in the checkpoint (e.g. to point ``root`` at the data on this machine)."""
    from lit_i2i.cli import import_class
    from lit_i2i.core.safe_load import load_checkpoint

    ckpt = Path(ckpt)
    state = load_checkpoint(ckpt, "--ckpt", map_location)  # weights_only=True: a crafted pickle runs nothing
    cfg = state.get("lit_i2i_config")
    if not cfg or not cfg.get("model"):
        raise UserError(f"--ckpt: {ckpt} was not written by `lit-i2i fit` (no lit_i2i_config inside)")
    data_spec = cfg.get("data")
    if config is not None:
        import yaml

        p = Path(config)
        if not p.is_file():
            raise UserError(f"--config: file not found: {p}")
        user = yaml.safe_load(p.read_text()) or {}
        data_spec = user.get("data", data_spec)
    cls = import_class(cfg["model"]["class_path"])
    model = cls.load_from_checkpoint(ckpt, map_location=map_location, weights_only=True)
    model.eval()
    return model, data_spec


def translate(argv: list[str]) -> int:
    from torchvision.io import write_png
    from tqdm import tqdm

    from datamodules.io import IMG_EXTENSIONS, list_images, load_image
    from datamodules.transforms import apply, to_uint8

    ap = CommandParser(prog="lit-i2i translate", description="Translate images with a trained checkpoint.")
    ap.add_argument("--ckpt", required=True, help="checkpoint from lit-i2i fit (e.g. runs/quickstart/checkpoints/last.ckpt)")
    ap.add_argument("--input", required=True, help="an image file or a folder of images")
    ap.add_argument("--output", required=True, help="output folder (PNG files keep the input file names)")
    ap.add_argument("--direction", default=None, help="AtoB (default: the method's first direction) or BtoA")
    ap.add_argument("--reference", default=None, help="reference image, for methods that need one")
    ap.add_argument("--mode", default=None, help="a method's extra operation (e.g. removal), where it has them")
    ap.add_argument("--num", type=int, default=None, help="with a mode that makes several outputs per input (e.g. "
                                                            "sample): how many")
    ap.add_argument("--config", default=None, help="YAML whose data section overrides the checkpoint's")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--overwrite", action="store_true", help="replace existing files in --output")
    a = ap.parse_args(argv)

    if not Path(a.ckpt).is_file():
        raise UserError(f"--ckpt: no such checkpoint file: {a.ckpt}")
    src = Path(a.input)
    if src.is_file():
        if src.suffix.lower() not in IMG_EXTENSIONS:
            raise UserError(f"--input: not an image file: {src}")
        files = [src]
    elif src.is_dir():
        files = list_images(src, "--input")
    else:
        raise UserError(f"--input: no such file or folder: {src}")
    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"--output: {out} is a file; give a folder (it is created if missing)")
    targets = [out / (f.stem + ".png") for f in files]
    first: dict[Path, Path] = {}
    for f, t in zip(files, targets):
        if t in first:
            raise UserError(f"--input: {first[t]} and {f} would both be written as {t}; "
                            "rename one of them or translate them separately")
        first[t] = f
    existing = [t for t in targets if t.exists()]
    if existing and not a.overwrite:
        raise UserError(f"--output: {len(existing)} file(s) already exist in {out} (e.g. {existing[0].name}); "
                        "pass --overwrite to replace them, or choose another folder")
    model, data_spec = load_run(a.ckpt, a.config)
    direction = a.direction or model.directions[0]
    if direction not in model.directions:
        raise UserError(f"--direction: {type(model).__name__} translates {', '.join(model.directions)}, not {direction}")
    dm = instantiate(data_spec) if data_spec else None
    t = dm.eval_transform() if dm is not None else None
    channels = getattr(dm, "channels", 3) if dm is not None else 3
    model.to(a.device)
    ref = None
    if a.reference:
        ref = apply(t, load_image(a.reference, channels))[None].to(a.device) if t else None
    kwargs = {"mode": a.mode} if a.mode else {}
    if a.num is not None:
        if a.num < 1:
            raise UserError(f"--num must be at least 1, got {a.num}")
        kwargs["num"] = a.num
    out.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(0, len(files), a.batch_size), desc="translate", unit="batch"):
        chunk = files[i:i + a.batch_size]
        imgs = [apply(t, load_image(f, channels)) for f in chunk]
        shapes = {tuple(x.shape) for x in imgs}
        groups = [imgs] if len(shapes) == 1 else [[x] for x in imgs]
        outs = []
        for g in groups:
            x = torch.stack(g).to(a.device)
            r = ref.expand(len(g), -1, -1, -1) if ref is not None else None
            with torch.no_grad():
                outs.extend(model.translate(x, direction, reference=r, **kwargs))
        for f, y in zip(chunk, outs):
            write_png(to_uint8(y.cpu()), str(out / (f.stem + ".png")))
    print(f"translated {len(files)} image(s) {direction} -> {out}")
    return 0


def evaluate(argv: list[str]) -> int:
    from lit_i2i.metrics import evaluate_model

    ap = CommandParser(prog="lit-i2i evaluate", description="Evaluate a checkpoint; print a table; write JSON.")
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--config", default=None, help="YAML whose data section overrides the checkpoint's")
    ap.add_argument("--metrics", default="fid_digits,kid_digits,acc",
                    help="comma-separated: fid, kid, fid_digits, kid_digits, acc, ... (see lit_i2i.metrics)")
    ap.add_argument("--directions", default=None, help="comma-separated (default: all the method's directions)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--max_samples", type=int, default=None)
    ap.add_argument("--reference", default="false",
                    help="reference-guided: true (every direction), false, or comma-separated directions; source i "
                         "is translated with target item i as its reference")
    ap.add_argument("--out", default=None, help="metrics JSON (default: metrics_eval.json beside the checkpoint)")
    ap.add_argument("--inception_weights", default=None)
    ap.add_argument("--cache_dir", default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--wandb", action="store_true", help="log a wandb.Table (offline without credentials)")
    a = ap.parse_args(argv)
    ref = {"true": True, "false": False}.get(a.reference.strip().lower())
    reference = ref if ref is not None else [d for d in a.reference.split(",") if d]
    model, data_spec = load_run(a.ckpt, a.config)
    if not data_spec:
        raise UserError("--config: the checkpoint has no data section; pass --config with one")
    dm = instantiate(data_spec)
    dm.setup("test")
    out = a.out or str(Path(a.ckpt).with_name("metrics_eval.json"))
    logger = None
    if a.wandb:
        from lit_i2i.core.loggers import WandbLogger

        logger = WandbLogger(save_dir=str(Path(out).parent), job_type="evaluate")
    directions = a.directions.split(",") if a.directions else list(model.directions)
    if isinstance(reference, list) and (bad := [d for d in reference if d not in directions]):
        raise UserError(f"--reference: true, false or some of the evaluated directions ({', '.join(directions)}); "
                        f"got {', '.join(bad)}")
    model.to(a.device)
    evaluate_model(model, dm, metrics=[m for m in a.metrics.split(",") if m], directions=directions, split=a.split,
                   max_samples=a.max_samples, reference=reference, out_json=out, inception_weights=a.inception_weights,
                   cache_dir=a.cache_dir, logger=logger)
    return 0


def train_classifier(argv: list[str]) -> int:
    from lit_i2i.metrics.commands import train_classifier_main

    return train_classifier_main(argv)


def reproduce(argv: list[str]) -> int:
    from lit_i2i.reproduce import reproduce_main

    return reproduce_main(argv)


def data(argv: list[str]) -> int:
    from lit_i2i.preview import preview_main

    return preview_main(argv)
