"""Does the data fit the model? Checked before training, so that a mismatch is one line naming the
option to change instead of a convolution's error after training started.

- Channels: the images' channel count per domain (after the data's own conversion) against the
  model's :meth:`TranslationModule.io_channels`.
- Sizes: every top-level network of the model is run once (eval mode, no gradients, random states kept)
  on a zero image of each extreme size the data produces (``datamodule.input_shapes()``: the
  smallest height, width and aspect ratios after preprocessing). A network that fails there but runs
  on a 256x256 image of the same channels is given too small an image (an InstanceNorm of one pixel,
  a kernel larger than its input); one that maps 256x256 to 256x256 but this size to another needs
  sizes that are a multiple of its downsampling factor, which is found by trying powers of two.
  Networks that do not take an image (losses, latent decoders, containers) fail at 256x256 too and
  are not judged. Sizes that are multiples of 256 are not probed (every network here takes them).
"""

from __future__ import annotations

import torch

from lit_i2i.core.rng import same_random_state
from lit_i2i.errors import UserError

SAFE = 256


def check_model_fits_data(model, datamodule) -> None:
    with same_random_state():
        try:
            shapes = datamodule.input_shapes()
        except UserError:
            raise
        except Exception:  # noqa: BLE001 - a datamodule that cannot tell its shapes is not checked
            return
        check_channels(model, datamodule, shapes)
        check_sizes(model, datamodule, shapes)


def check_channels(model, datamodule, shapes) -> None:
    wanted = model.io_channels() if hasattr(model, "io_channels") else {}
    for domain, path, shape in shapes:
        if domain not in wanted or shape[0] == wanted[domain][1]:
            continue
        arg, n = wanted[domain]
        option = "--data.init_args.channels" if hasattr(datamodule, "channels") else "the data"
        have = f" (data.channels: {datamodule.channels})" if hasattr(datamodule, "channels") else ""
        raise UserError(f"the data's {domain} images have {shape[0]} channel(s){have}, but the model "
                        f"({type(model).__name__}) takes {n} (model.{arg}: {n}), e.g. {path}; set {option} {n} "
                        f"or --model.init_args.{arg} {shape[0]}")


def _run(net, x):
    """(output, None) or (None, the exception) of ``net(x)``."""
    try:
        return net(x), None
    except Exception as e:  # noqa: BLE001 - any failure is what is being probed
        return None, e


def _keeps_size(net, x) -> bool:
    out, _ = _run(net, x)
    return torch.is_tensor(out) and out.ndim == 4 and out.shape[-2:] == x.shape[-2:]


def _multiple(net, c: int, h: int, w: int) -> int | None:
    """The least power of two m (at most the image's sides) such that ``net`` keeps the size of h x w
    rounded up to multiples of m; None: no rounding helps (the image is too small)."""
    m = 2
    while m <= min(SAFE, h, w):
        if _keeps_size(net, torch.zeros(1, c, -(-h // m) * m, -(-w // m) * m)):
            return m
        m *= 2
    return None


def _preprocess(datamodule) -> str:
    p = getattr(datamodule, "preprocess", None)
    return f" after preprocess: {p}" if p else ""


def check_sizes(model, datamodule, shapes) -> None:
    seen: dict[tuple, str] = {}
    for _, path, shape in shapes:
        seen.setdefault(tuple(shape), path)
    probe = {s: p for s, p in seen.items() if s[-1] % SAFE or s[-2] % SAFE}
    if not probe:
        return
    nets = [(name, net) for name, net in model.named_children() if any(True for _ in net.parameters())]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for (c, h, w), path in probe.items():
                x = torch.zeros(1, c, h, w)
                safe = torch.zeros(1, c, SAFE, SAFE)
                for name, net in nets:
                    out, err = _run(net, x)
                    if err is not None:
                        if _run(net, safe)[1] is None:
                            _refuse(datamodule, path, name, net, (c, h, w),
                                    f"{type(err).__name__}: {str(err).splitlines()[0][:120]}")
                        continue
                    if (torch.is_tensor(out) and out.ndim == 4 and out.shape[-2:] != x.shape[-2:]
                            and _keeps_size(net, safe)):
                        _refuse(datamodule, path, name, net, (c, h, w),
                                f"it gives {out.shape[-1]}x{out.shape[-2]} back")
    finally:
        model.train(was)


def _refuse(datamodule, path: str, name: str, net, shape: tuple[int, int, int], what: str):
    """The UserError for an image size network ``name`` cannot take: not a multiple of its
    downsampling factor (found by trying) or too small for it."""
    c, h, w = shape
    image = f"image {path} is {w}x{h} (WxH){_preprocess(datamodule)}"
    m = _multiple(net, c, h, w)
    if m is not None:
        fix = f"; set --data.init_args.stride {m}" if hasattr(datamodule, "stride") else ""
        raise UserError(f"{image}, but the network {name} needs heights and widths that are multiples of {m} "
                        f"({what}){fix}")
    raise UserError(f"{image}, too small for the network {name} ({what}); use larger images, a larger "
                    "data.load_size / crop_size, or another data.preprocess")
