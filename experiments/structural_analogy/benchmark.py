"""Structural analogy benchmark (issue 15): does A->B take B's patch statistics while keeping A's layout?

For each pair of built-in photographs and both directions it trains, on this machine's CPU:
  - SA: ``experiments/structural_analogy/cpu.yaml`` (README weights: beta 10, alpha 1), through ``lit-i2i fit``;
  - SA beta 0: the same without the cycle term;
  - CycleGAN on random crops of the same two images (``experiments/structural_analogy/cyclegan_pair_cpu.yaml``,
    through ``lit-i2i fit``: ResNet ngf 32 with 3 blocks, PatchGAN ndf 32 with 2 layers, LSGAN, cycle 10,
    identity 0.5; random 48x48 crops and flips of the two 64x64 images, batch 4), applied to the whole image;
and measures every translation with ``lit_i2i.metrics.patch`` (no pretrained network needed):
  - appearance, against the target image: SWD over 7x7 patches of a Laplacian pyramid (mean of the levels, in units
    of the target's per-channel std), nearest-neighbour patch coherence and completeness (means over 3 scales);
  - structure, against the source image: SSIM, and correlation of the luminances and of the edge maps,
    on the luminance blurred by sigma = side / 32;
  - SIFID when Inception weights are present (the suite's offline rule; otherwise said so in the output).
Rows "source" (the untranslated image) and "target" (the other image itself) give the two ends of each scale.
SA's random samples are translated too (``sample_and_translate``): their patch distances are reported.

  python experiments/structural_analogy/benchmark.py --out runs/sa_benchmark
  python experiments/structural_analogy/benchmark.py --out runs/sa_smoke --smoke     # seconds, for the tests
The same three rows on one pair, scored by ``lit-i2i evaluate``'s patch metrics, are a table file:
``lit-i2i reproduce experiments/tables/structural_analogy_pair.yaml --proxy``.

Writes ``<out>/results.json``, ``<out>/table.md`` and one picture per pair (``--pictures``, default
``<out>/pictures``): per method a row of A, B, A->B, B->A and, for SA, random samples of A and B with
their translations. Single-threaded (``torch.set_num_threads(1)``), one run at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from datamodules.single_pair import SinglePair  # noqa: E402
from lit_i2i.metrics import patch as pm  # noqa: E402

CONFIG = ROOT / "experiments" / "structural_analogy" / "cpu.yaml"
CYCLEGAN_CONFIG = ROOT / "experiments" / "structural_analogy" / "cyclegan_pair_cpu.yaml"
PAIRS = ("chelsea:coffee", "astronaut:rocket", "camera:chelsea")
SMOKE_SA = ["--model.init_args.img_size", "20", "--model.init_args.min_size", "16", "--data.init_args.size", "20",
            "--model.init_args.nfc", "8", "--model.init_args.min_nfc", "8", "--model.init_args.max_nfc", "8",
            "--model.init_args.inject_level", "-2"]
SMOKE_CYCLEGAN = ["--model.init_args.ngf", "8", "--model.init_args.n_blocks", "1", "--model.init_args.ndf", "8",
                  "--data.init_args.size", "20", "--data.init_args.crop", "16", "--data.init_args.batch_size", "2"]


def image(name: str, size: int) -> torch.Tensor:
    img = SinglePair(name, name, size=size).eval_source("A")[0][0]
    return img[None].float() / 127.5 - 1


def train(method: str, a: str, b: str, root: Path, args) -> tuple[object, dict]:
    """One ``lit-i2i fit`` of ``method`` (SA, SA_beta0 or CycleGAN) on the pair; its model from last.ckpt."""
    from lit_i2i.cli import main
    from lit_i2i.methods.cyclegan import CycleGAN
    from lit_i2i.methods.structural_analogy import StructuralAnalogy

    if method == "CycleGAN":
        half = max(1, args.cyclegan_iters // 2)
        config, cls = CYCLEGAN_CONFIG, CycleGAN
        extra = ["--data.init_args.steps_per_epoch", str(args.cyclegan_iters), "--model.init_args.n_epochs", str(half),
                 "--model.init_args.n_epochs_decay", str(half), *(SMOKE_CYCLEGAN if args.smoke else [])]
    else:
        config, cls = CONFIG, StructuralAnalogy
        extra = ["--model.init_args.beta", "0.0" if method == "SA_beta0" else "10.0", "--model.init_args.niter",
                 str(args.niter), *(SMOKE_SA if args.smoke else [])]
    t0, c0 = time.time(), time.process_time()
    code = main(["fit", "--config", str(config), "--trainer.default_root_dir", str(root), "--data.init_args.a", a,
                 "--data.init_args.b", b, "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
                 "--seed_everything", str(args.seed), *extra])
    if code != 0:
        raise SystemExit(f"lit-i2i fit failed for {method} {a}->{b} (exit {code})")
    cost = {"wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1)}
    model = cls.load_from_checkpoint(root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return model.eval(), cost


def measure(y: torch.Tensor, source: torch.Tensor, target: torch.Tensor, sifid_net) -> dict:
    out = {}
    swd = pm.swd_pyramid(y, target)
    out["swd"] = swd.pop("swd")
    out.update(swd)
    nn_ = pm.patch_nn(y, target)
    out["coherence"], out["completeness"] = nn_["coherence"], nn_["completeness"]
    out.update(pm.structure_scores(y, source))
    if sifid_net is not None:
        out["sifid"] = pm.sifid(y, target, sifid_net)
    return out


def mean_rows(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}


def picture(a_img, b_img, outputs: dict, path: Path) -> Path:
    from lit_i2i.core.visuals import save_grid, visual_grid

    blank = torch.ones_like(a_img)
    grids = []
    for method, o in outputs.items():
        vis = {"A": a_img, "B": b_img, f"{method} A>B": o["AtoB"], f"{method} B>A": o["BtoA"]}
        for i in range(2):
            s = o.get("samples")
            vis[f"sample A{i}"] = s["A"]["sample"][i:i + 1] if s else blank
            vis[f"A{i}>B"] = s["A"]["translation"][i:i + 1] if s else blank
        for i in range(2):
            s = o.get("samples")
            vis[f"sample B{i}"] = s["B"]["sample"][i:i + 1] if s else blank
            vis[f"B{i}>A"] = s["B"]["translation"][i:i + 1] if s else blank
        grids.append(visual_grid(vis, max_rows=1, min_size=128, labels=True))
    return save_grid(torch.cat(grids, dim=1), path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/sa_benchmark")
    ap.add_argument("--pictures", default=None, help="folder for one PNG per pair (default <out>/pictures)")
    ap.add_argument("--pairs", nargs="+", default=list(PAIRS), help="A:B names of built-in photographs (or files)")
    ap.add_argument("--niter", type=int, default=300, help="SA iterations per scale (cpu.yaml: 300)")
    ap.add_argument("--cyclegan_iters", type=int, default=700,
                    help="CycleGAN batches (cyclegan_pair_cpu.yaml: 700, about the CPU time of one SA run of cpu.yaml)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", nargs="+", default=["SA", "SA_beta0", "CycleGAN"])
    ap.add_argument("--smoke", action="store_true", help="tiny nets and 2 iterations: checks that the script runs")
    args = ap.parse_args(argv)
    if args.smoke:
        args.niter, args.cyclegan_iters = 2, 2
    args.size = 20 if args.smoke else int(yaml.safe_load(CONFIG.read_text())["data"]["init_args"]["size"])
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pics = Path(args.pictures) if args.pictures else out / "pictures"
    sifid_net = pm.sifid_features()
    results = {"settings": {k: v for k, v in vars(args).items()}, "sifid": sifid_net is not None, "runs": {},
               "rows": []}
    if sifid_net is None:
        print("SIFID: no InceptionV3 weights on this machine (LIT_I2I_INCEPTION_WEIGHTS / torch hub cache); not computed")
    for spec in args.pairs:
        a, b = spec.split(":")
        tag = f"{Path(a).stem}_{Path(b).stem}"
        imgs = {"A": image(a, args.size), "B": image(b, args.size)}
        outputs = {}
        for method in args.methods:
            root = out / f"{method}_{tag}"
            model, cost = train(method, a, b, root, args)
            results["runs"][f"{method}_{tag}"] = cost
            print(f"{method} {tag}: trained in {cost['wall_s']} s wall, {cost['cpu_s']} s CPU", flush=True)
            o = {}
            with torch.no_grad():
                for direction, src, tgt in (("AtoB", "A", "B"), ("BtoA", "B", "A")):
                    o[direction] = model.translate(imgs[src], direction)
                    row = {"pair": tag, "direction": direction, "method": method,
                           **measure(o[direction], imgs[src], imgs[tgt], sifid_net)}
                    results["rows"].append(row)
                    if method != "CycleGAN":
                        for k in range(model.num_scales):  # the inject-level sweep
                            y = model.translate(imgs[src], direction, inject_level=k)
                            results["rows"].append({"pair": tag, "direction": direction, "method": f"{method}@{k}",
                                                    **measure(y, imgs[src], imgs[tgt], sifid_net)})
                if method != "CycleGAN":
                    o["samples"] = {d: model.sample_and_translate(4, f"{d}to{'B' if d == 'A' else 'A'}", seed=1)
                                    for d in ("A", "B")}
                    for d, tgt in (("A", "B"), ("B", "A")):
                        s = o["samples"][d]
                        rows = [measure(s["translation"][i:i + 1], s["sample"][i:i + 1], imgs[tgt], sifid_net)
                                for i in range(len(s["sample"]))]
                        results["rows"].append({"pair": tag, "direction": f"{d}to{tgt}", "method": f"{method} samples",
                                                **mean_rows(rows)})
            outputs[method] = o
        for direction, src, tgt in (("AtoB", "A", "B"), ("BtoA", "B", "A")):
            for name, y in (("source", imgs[src]), ("target", imgs[tgt])):
                results["rows"].append({"pair": tag, "direction": direction, "method": name,
                                        **measure(y, imgs[src], imgs[tgt], sifid_net)})
        path = picture(imgs["A"], imgs["B"], outputs, pics / f"{tag}.png")
        print(f"picture: {path}", flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    write_table(results, out / "table.md")
    print((out / "table.md").read_text())
    return 0


def write_table(results: dict, path: Path) -> None:
    rows = results["rows"]
    keys = ["swd", "coherence", "completeness", "ssim_lowpass", "corr_lowpass", "corr_edges"]
    if results["sifid"]:
        keys.insert(1, "sifid")
    methods = list(dict.fromkeys(r["method"] for r in rows if "@" not in r["method"]))
    lines = ["mean over pairs and directions (appearance vs the target image: lower is closer; structure vs the "
             "source image: higher keeps more)", "", "| method | " + " | ".join(keys) + " |",
             "|---" * (len(keys) + 1) + "|"]
    for m in methods:
        mr = mean_rows([r for r in rows if r["method"] == m])
        lines.append(f"| {m} | " + " | ".join(f"{mr[k]:.3f}" for k in keys) + " |")
    lines += ["", "per pair and direction", "", "| pair | direction | method | " + " | ".join(keys) + " |",
              "|---" * (len(keys) + 3) + "|"]
    for r in rows:
        if "@" not in r["method"]:
            lines.append(f"| {r['pair']} | {r['direction']} | {r['method']} | "
                         + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    sweep = sorted({r["method"] for r in rows if "@" in r["method"]}, key=lambda m: (m.split("@")[0], int(m.split("@")[1])))
    if sweep:
        lines += ["", "inject-level sweep (mean over pairs and directions)", "", "| method@level | "
                  + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for m in sweep:
            mr = mean_rows([r for r in rows if r["method"] == m])
            lines.append(f"| {m} | " + " | ".join(f"{mr[k]:.3f}" for k in keys) + " |")
    lines += ["", "training cost", "", "| run | wall s | CPU s |", "|---|---|---|"]
    lines += [f"| {k} | {v['wall_s']} | {v['cpu_s']} |" for k, v in results["runs"].items()]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
