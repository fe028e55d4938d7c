"""Where the style-code baselines lose the digit (issue 17): MUNIT, StarGAN v2 and FUNIT take the
target's style on the built-in digits but keep the source's digit in only 0.2-0.4 of their outputs at
CPU lengths. This splits that number into the steps a translation goes through, on trained checkpoints
(test split; every measure is the share of outputs the shipped digit classifier of the output's domain
reads as the *source's* digit; 1.0 = kept)::

    python experiments/where_content_is_lost.py --ckpt runs/munit_digits/checkpoints/last.ckpt
    python experiments/where_content_is_lost.py --ckpt runs/stargan_v2_digits_palette/checkpoints/last.ckpt
    python experiments/where_content_is_lost.py --ckpt runs/funit_digits_palette/checkpoints/last.ckpt
    python experiments/where_content_is_lost.py --ckpt A.ckpt --ckpt B.ckpt ...   # one row per checkpoint

MUNIT (``munit/digits.yaml``: digits -> colored digits; per source domain X, other domain Y):
  - ``recon``: X's own autoencoder, G_X(c_X(x), s_X(x));
  - ``swap``: content of x with the style code of another test image of X (does the style carry the digit?);
  - ``cross``: content of x with the style code of a real test image of Y, decoded by G_Y: the
    reference-guided translation;
  - ``align``: the share of X's content codes whose nearest class mean (Euclidean, flattened code) among
    Y's content codes is their own digit; ``align_own``: the same against X's own class means. MUNIT's
    losses tie each content code to its own image and to its translation, but nothing ties the two domains'
    content spaces to each other except the GAN: ``align`` is how far they agree.
StarGAN v2 / FUNIT (``*/digits_palette.yaml``: the four colour schemes as domains / classes, the digit the
content; per source domain d, target d + 1; the EMA generator, as they translate):
  - ``recon``: the source with its own style (StarGAN v2: E(x, d); FUNIT: the class code of x itself), i.e.
    a change to nothing;
  - ``swap``: the style of another test image of the same domain;
  - ``cross``: reference-guided translation (a test image of the target domain);
  - ``cycle`` (StarGAN v2): the translation translated back with the source's own style;
  - ``content_effect``: how much the output follows the content, with the style held fixed: every source
    with the style of ONE target test image, mean L1 between the outputs of sources i and perm(i) over the
    mean L1 between the sources themselves (one domain's sources differ in digit and pose only). 0 = the
    content is ignored (one template per style); real translations of this pair give about 1. Not a share.
A generator that cannot keep the digit in ``recon`` cannot keep it in a translation: ``recon`` low means
the generator has not yet learnt to carry its content through (length, width); ``recon`` high and
``cross`` low means the content is lost in the change of domain.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _kept(judge, out: torch.Tensor, y: torch.Tensor) -> float:
    return float((judge(out.clamp(-1, 1)).argmax(1) == y).float().mean())


def _perm(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def _stack(ds, key: str = "label") -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([ds[i]["image"] for i in range(len(ds))]), torch.tensor([int(ds[i][key]) for i in range(len(ds))])


@torch.no_grad()
def munit(model, spec: dict) -> dict[str, dict[str, float]]:
    from datamodules.builtin import BuiltinDigits
    from lit_i2i.metrics.classifier import load_digit_classifier

    dm = BuiltinDigits(**{k: v for k, v in spec.get("init_args", {}).items() if k in ("a", "b")})
    data = {d: _stack(dm.eval_dataset(d, "test")) for d in ("A", "B")}
    judge = {d: load_digit_classifier(dm.builtin_domain(d)) for d in ("A", "B")}
    gen = {"A": model.gen_a, "B": model.gen_b}
    codes = {d: gen[d].codes(data[d][0]) for d in ("A", "B")}
    perm = {d: _perm(len(data[d][0])) for d in ("A", "B")}

    def nearest_mean(f, g, lab, y):
        means = torch.stack([g[lab == k].mean(0) for k in range(10)])
        return float((torch.cdist(f, means).argmin(1) == y).float().mean())

    res = {}
    for d, o in (("A", "B"), ("B", "A")):
        (c, s), (c_o, s_o) = codes[d], codes[o]
        y, y_o = data[d][1], data[o][1]
        ref = perm[o][torch.arange(len(c)) % len(s_o)]
        res[f"{d}to{o}"] = {"recon": _kept(judge[d], gen[d].decode(c, s), y),
                            "swap": _kept(judge[d], gen[d].decode(c, s[perm[d]]), y),
                            "cross": _kept(judge[o], gen[o].decode(c, s_o[ref]), y),
                            "align": nearest_mean(c.flatten(1), c_o.flatten(1), y_o, y),
                            "align_own": nearest_mean(c.flatten(1), c.flatten(1), y, y)}
    return res


@torch.no_grad()
def multidomain(model, spec: dict) -> dict[str, dict[str, float]]:
    from datamodules.builtin_multidomain import BuiltinMultiDomain
    from lit_i2i.errors import UserError
    from lit_i2i.metrics.classifier import DIGIT_NET_FOR, load_digit_classifier

    args = {k: v for k, v in spec.get("init_args", {}).items() if k in ("domain", "classes", "labelled")}
    if args.get("classes") != "scheme":
        raise UserError("--ckpt: this diagnosis needs a palette-digits run with classes: scheme (the digit is the "
                        "content), e.g. experiments/stargan_v2/digits_palette.yaml or funit/digits_palette.yaml")
    dm = BuiltinMultiDomain(**args)
    judge = load_digit_classifier(DIGIT_NET_FOR[dm.builtin_domain(dm.domains[0])])
    data = {d: _stack(dm.eval_dataset(d, "test"), "content_label") for d in dm.domains}
    sg2 = model.method_name == "stargan_v2"
    res = {}
    for d in dm.domains:
        t = str((int(d) + 1) % len(dm.domains))
        n = min(len(data[d][0]), len(data[t][0]))
        (x, y), xr = (v[:n] for v in data[d]), data[t][0][:n]
        perm = _perm(n)
        if sg2:
            G, E = model.G_ema, model.E_ema
            s_own, s_t = E(x, torch.full((n,), int(d))), E(xr, torch.full((n,), int(t)))
            fake = G(x, s_t)
            res[f"{d}to{t}"] = {"recon": _kept(judge, G(x, s_own), y), "swap": _kept(judge, G(x, s_own[perm]), y),
                                "cross": _kept(judge, fake, y), "cycle": _kept(judge, G(fake, s_own), y),
                                "content_effect": _content_effect(G(x, s_t[:1].expand_as(s_t)), x, perm)}
        else:
            G = model.G_ema
            c = G.encode(x)
            code_t = G.class_code(xr)
            res[f"{d}to{t}"] = {"recon": _kept(judge, G.decode(c, G.class_code(x)), y),
                                "swap": _kept(judge, G.decode(c, G.class_code(x[perm])), y),
                                "cross": _kept(judge, G.decode(c, code_t), y),
                                "content_effect": _content_effect(G.decode(c, code_t[:1].expand_as(code_t)), x, perm)}
    return res


def _content_effect(out: torch.Tensor, x: torch.Tensor, perm: torch.Tensor) -> float:
    """Mean L1 between outputs i and perm(i) over that between their sources (``content_effect``)."""
    return float((out.clamp(-1, 1) - out.clamp(-1, 1)[perm]).abs().mean() / (x - x[perm]).abs().mean())


DIAGNOSES = {"munit": munit, "stargan_v2": multidomain, "funit": multidomain}


def main(argv: list[str] | None = None) -> int:
    from lit_i2i.commands import load_run
    from lit_i2i.errors import UserError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", action="append", required=True, help="a checkpoint of lit-i2i fit (repeatable)")
    ap.add_argument("--out", default=None, help="also write the numbers here (JSON)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = {}
    try:
        for ckpt in a.ckpt:
            model, spec = load_run(ckpt)
            if model.method_name not in DIAGNOSES:
                raise UserError(f"--ckpt: {ckpt} is a {model.method_name} run; this diagnosis reads "
                                f"{', '.join(DIAGNOSES)} checkpoints")
            state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
            res = DIAGNOSES[model.method_name](model.eval(), spec or {})
            out[str(ckpt)] = {"method": model.method_name, "global_step": int(state.get("global_step", -1)), "rows": res}
            cols = list(next(iter(res.values())))
            print(f"\n{model.method_name}, {ckpt} (optimizer step {out[str(ckpt)]['global_step']})\n")
            print("| direction | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
            for k, r in res.items():
                print(f"| {k} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
            print("| mean | " + " | ".join(f"{sum(r[c] for r in res.values()) / len(res):.3f}" for c in cols) + " |")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=2))
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
