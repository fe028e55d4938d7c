"""``lit-i2i bench eval``: the cost of one evaluation pass, without and with the real-feature cache.

It times the built-in digits' metrics (the digit classifier's features; ``--metrics fid,kid`` for
Inception, whose weights need a download) over ``--n`` real and ``--n`` translated images (an
identity "model"), first with no cached real features and then with them, checks that both give the
same numbers, and prints images/s of the feature extraction alone.
"""

from __future__ import annotations

import math
import tempfile
import time

import torch
from torch import nn


class _Identity(nn.Module):
    """A stand-in 'model' for the benchmark: translate() returns its input."""

    directions = ("AtoB",)
    method_name = "identity"

    def translate(self, x, direction="AtoB", reference=None):
        return x


def bench_eval_main(argv: list[str]) -> int:
    from datamodules.builtin import BuiltinDigits
    from lit_i2i.cli import CommandParser
    from lit_i2i.metrics.evaluate import Evaluator

    ap = CommandParser(prog="lit-i2i bench eval",
                       description="Time one evaluation without and with cached real features.")
    ap.add_argument("--n", type=int, default=1000, help="real and translated images (at most 1437)")
    ap.add_argument("--metrics", default="fid_digits,kid_digits,acc")
    ap.add_argument("--batch_size", type=int, default=100)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--cache_dir", default=None, help="default: a fresh temporary folder")
    ap.add_argument("--inception_n", type=int, default=0,
                    help="also time Inception-v3 features of this many images (random weights: speed only, no "
                         "download; the FID/KID network of lit_i2i.metrics)")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    # paired built-in data: both domains draw from all 1,437 training digits
    dm = BuiltinDigits(a="digits", b="colored-digits", paired=True)
    model = _Identity()
    metrics = [m for m in a.metrics.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        ev = Evaluator(metrics, ["AtoB"], split="train", max_samples=a.n, batch_size=a.batch_size,
                       cache_dir=a.cache_dir or tmp)
        plan = ev.plan(model, dm)[0]
        net = ev._net(plan.digit_net, device)  # loaded before timing: both runs pay only for images
        ev.cache.root.mkdir(parents=True, exist_ok=True)
        for f in ev.cache.root.glob("*.pt"):
            f.unlink()

        def timed(fn):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return out, time.perf_counter() - t0

        (cold, _), t_cold = timed(lambda: ev.run(model, dm, device))
        (warm, _), t_warm = timed(lambda: ev.run(model, dm, device))
        x = torch.stack([dm.eval_dataset("B", "train")[i]["image"] for i in range(a.n)]).to(device)

        def extract():
            with torch.no_grad():
                for i in range(0, len(x), a.batch_size):
                    net(x[i:i + a.batch_size])

        extract()
        _, t_ext = timed(extract)
    same = all((math.isnan(cold[k]) and math.isnan(warm[k])) or abs(cold[k] - warm[k]) <= 1e-9 * max(1.0, abs(cold[k]))
               for k in cold)  # an unavailable KID std is NaN in both
    print(f"\nlit-i2i bench eval: {a.n} real + {a.n} translated 32x32 images, {net.name}, metrics "
          f"{', '.join(metrics)}, device {device}, {torch.get_num_threads()} threads")
    print(f"{'':<34} {'seconds':>8} {'images/s':>9}")
    print(f"{'cold (real features computed)':<34} {t_cold:>8.2f} {2 * a.n / t_cold:>9.0f}")
    print(f"{'warm (real features cached)':<34} {t_warm:>8.2f} {a.n / t_warm:>9.0f}")
    print(f"{'ratio cold / warm':<34} {t_cold / t_warm:>8.2f}")
    print(f"{'feature extraction alone':<34} {t_ext:>8.2f} {a.n / t_ext:>9.0f}")
    if a.inception_n:
        from lit_i2i.metrics.extractors import to_rgb, to_uint8

        inc = random_inception().to(device)
        xi = x[: a.inception_n]

        def inception():
            with torch.no_grad():
                for i in range(0, len(xi), a.batch_size):
                    inc(to_uint8(to_rgb(xi[i:i + a.batch_size])))

        xi_warm = xi[:2]
        with torch.no_grad():
            inc(to_uint8(to_rgb(xi_warm)))
        _, t_inc = timed(inception)
        print(f"{'Inception-v3 features (299 px)':<34} {t_inc:>8.2f} {len(xi) / t_inc:>9.1f}")
    print(f"same results cold and warm: {same}")
    return 0


def random_inception():
    """torch-fidelity's InceptionV3 (the FID/KID network) with its random initial weights: the same
    compute as the real one, for timing only, without the weights download."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class RandomInception(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random init
            return None

    with tempfile.TemporaryDirectory() as tmp:
        empty = f"{tmp}/empty.pth"
        torch.save({}, empty)
        net = RandomInception("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)
    return net.eval()
