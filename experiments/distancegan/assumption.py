"""Does the built-in pair satisfy DistanceGAN's assumption? A check without training.

DistanceGAN (Benaim & Wolf 2017) assumes that the distance between two source images predicts the
distance between their translations (its Figure 1 shows high correlations on the paper's pairs); its
loss, ``L_dist`` (``lit_i2i.methods.distancegan``), asks each batch of translations for the source
batch's standardised pairwise distances. The built-in renderer knows the *true* translation of every
digit (the same digit rendered in the target domain: ``datamodules.builtin.render``), so this script
scores candidate mappings of the A test digits with the loss itself, on batches of ``--batch_size``:

- the true translation (the paired render);
- a mapping that ignores its input (a random target-domain image for each source image);
- for digits -> colored digits, one fixed colouring of each digit (the digit kept, not on B's
  distribution); the identity (the source image itself).

With ``corr`` the Pearson correlation of d(x_i, x_j) and d(G(x_i), G(x_j)) over those pairs. The
statistics (mu, sigma) are those of the method: over ``--max_items`` items of each training half,
an item being one image (the DiscoGAN-architecture code) or one batch (the CycleGAN-architecture
code, whose sigma shrinks as the batch grows, which scales the whole loss up).

If the true translation scores no better than the input-ignoring mapping, the loss cannot prefer
translating on that pair, whatever the training length.

A second table needs no known translation (so it covers the generated street digits, the MNIST -> SVHN
stand-in of ``distancegan/digits_mnist2svhn.yaml``): how much of the digit a domain's pair distances
carry, as the AUC of "two images of the same digit are closer than two of different digits" over the
test split's pairs (0.5: the distances say nothing about the digit). Where the target's distances
carry no digit, matching them to the source's cannot make a translation keep its digit::

    python experiments/distancegan/assumption.py [--batch_size 8] [--out runs/distancegan_assumption]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from datamodules.builtin import domain_source, indices, render  # noqa: E402
from lit_i2i.methods.distancegan import distance_gap, distance_statistics, pair_distances  # noqa: E402

#: (source domain, target domain) of the built-in pairs whose true translation the renderer knows
PAIRS = (("digits", "colored-digits"), ("no-accessory", "accessory"))


def images(domain: str, idx) -> torch.Tensor:
    return render(domain, idx)[0].float() / 127.5 - 1


def statistics(x: torch.Tensor, item: int, max_items: int) -> tuple[float, float]:
    """(mu, sigma) over ``max_items`` items of ``item`` images each (a fixed shuffle of ``x``)."""
    p = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n = len(x) // item * item
    return distance_statistics(x[p[:n]].view(-1, item, *x.shape[1:])[:max_items])


def score(x: torch.Tensor, y: torch.Tensor, stats_a, stats_b, batch: int) -> tuple[float, float]:
    """(mean L_dist over consecutive batches, corr of the pair distances) of the mapping x -> y."""
    losses, da, db = [], [], []
    for s in range(0, len(x) - batch + 1, batch):
        a, b = pair_distances(x[s:s + batch]), pair_distances(y[s:s + batch])
        losses.append(float(distance_gap(a, b, stats_a, stats_b)))
        da.append(a), db.append(b)
    corr = float(torch.corrcoef(torch.stack([torch.cat(da), torch.cat(db)]))[0, 1])
    return sum(losses) / len(losses), corr


def class_auc(x: torch.Tensor, labels: torch.Tensor, max_pairs: int = 20000) -> float:
    """P(d(same-label pair) < d(different-label pair)) over the pairs of ``x`` (ties count half);
    the different-label pairs subsampled to ``max_pairs`` with a fixed seed."""
    flat = x.flatten(1).float()
    d = torch.cdist(flat[None], flat[None], p=1)[0] / flat.shape[1]
    i, j = torch.triu_indices(len(x), len(x), 1)
    same = labels[i] == labels[j]
    ds, dn = d[i, j][same], d[i, j][~same]
    if len(ds) == 0 or len(dn) == 0:
        raise ValueError("class_auc needs pairs of the same and of different labels")
    dn = dn[torch.randperm(len(dn), generator=torch.Generator().manual_seed(0))[:max_pairs]]
    return float((ds[:, None] < dn[None]).float().mean() + 0.5 * (ds[:, None] == dn[None]).float().mean())


#: (domain, half) whose test split the class AUC reads
AUC_DOMAINS = (("digits", "A"), ("colored-digits", "B"), ("accessory", "B"), ("street-digits", "B"))


def candidates(a: str, b: str, idx) -> dict[str, torch.Tensor]:
    x = images(a, idx)
    pool = images(b, indices("B", "train"))
    out = {"true translation (paired render)": images(b, idx),
           "input ignored (random B image)":
               pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(1))[:len(x)]]}
    if a == "digits":
        m = (x[:, :1] + 1) / 2
        fg, bg = torch.tensor([0.9, 0.8, 0.2])[:, None, None], torch.tensor([0.1, 0.2, 0.5])[:, None, None]
        out["one fixed colouring (digit kept, not B)"] = (bg * (1 - m) + fg * m) * 2 - 1
    out["identity (the source image)"] = x
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch_size", type=int, default=8, help="the training batch (experiments/distancegan/digits.yaml: 8)")
    ap.add_argument("--max_items", type=int, default=900)
    ap.add_argument("--out", default="runs/distancegan_assumption")
    args = ap.parse_args(argv)
    if args.batch_size < 2:
        raise SystemExit("--batch_size: the pairwise loss needs at least 2 images a batch")
    torch.set_num_threads(1)
    lines = [f"DistanceGAN's loss on known mappings of the A test digits (batches of {args.batch_size}; "
             f"statistics over {args.max_items} items of each training half).", "",
             "| pair | mapping | corr(d_x, d_G(x)) | L_dist, items = images | "
             f"L_dist, items = batches of {args.batch_size} |", "|---|---|---|---|---|"]
    for a, b in PAIRS:
        xa, xb = images(a, indices("A", "train")), images(b, indices("B", "train"))
        per_image = statistics(xa, 1, args.max_items), statistics(xb, 1, args.max_items)
        per_batch = statistics(xa, args.batch_size, args.max_items), statistics(xb, args.batch_size, args.max_items)
        idx = indices("A", "test")
        x = images(a, idx)
        for name, y in candidates(a, b, idx).items():
            l_img, corr = score(x, y, *per_image, args.batch_size)
            l_bat, _ = score(x, y, *per_batch, args.batch_size)
            lines.append(f"| {a} -> {b} | {name} | {corr:+.3f} | {l_img:.3f} | {l_bat:.3f} |")
        lines.append(f"| {a} -> {b} | (sigma_A, sigma_B) | | {per_image[0][1]:.4f}, {per_image[1][1]:.4f} | "
                     f"{per_batch[0][1]:.4f}, {per_batch[1][1]:.4f} |")
    lines += ["", "How much of the digit the pair distances carry (test split, AUC of same-digit pairs being closer "
              "than different-digit pairs; 0.5 = nothing):", "", "| domain | images | AUC |", "|---|---|---|"]
    for name, half in AUC_DOMAINS:
        src = domain_source(name, half, "test", 0)
        n = min(len(src.images), 600)
        x = src.images[:n].float() / 127.5 - 1
        lines.append(f"| {name} | {n} | {class_auc(x, torch.as_tensor(src.labels[:n])):.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "assumption.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
