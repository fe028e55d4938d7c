"""The palette digits' colour schemes as domains (BuiltinMultiDomain classes="scheme") and the measures that
go with them: ``scheme_rate`` / ``scheme_error`` (known answers), ``acc`` on ``content_label`` and ``ref_acc``."""

import pytest
import torch

from datamodules.builtin import PALETTE, palette_schemes, render
from datamodules.builtin_multidomain import BuiltinMultiDomain
from lit_i2i.errors import UserError
from lit_i2i.metrics import scores
from lit_i2i.metrics.evaluate import evaluate_model


def _scheme(k):
    return tuple(torch.tensor(c)[None, :, None, None] * 2 - 1 for c in PALETTE[k])  # (fg, bg) in [-1, 1]


def test_palette_schemes_are_the_rendered_colours():
    idx = list(range(0, 1797, 37))
    imgs = render("palette-digits", idx)[0].float() / 255
    k = palette_schemes(idx)
    assert set(k.tolist()) == {0, 1, 2, 3}
    bg = torch.tensor([PALETTE[int(i)][1] for i in k])
    border = scores.image_colours(imgs * 2 - 1)[0]  # the median of the 2-pixel border: background (+ noise)
    assert (border - bg).abs().max() < 0.03


def test_scheme_domains_labels_and_content():
    dm = BuiltinMultiDomain(domain="palette-digits", classes="scheme", labelled=True, second_view=False)
    assert dm.domains == ("0", "1", "2", "3") and dm.colour_scheme("2") == PALETTE[2]
    train = dm.dataset("train")
    assert {train[i]["label"] for i in range(40)} <= {0, 1, 2, 3}
    for k in dm.domains:
        ds = dm.eval_dataset(k)
        item = ds[0]
        assert item["label"] == int(k)
        assert 0 <= item["content_label"] <= 9
        fg, bg = _scheme(int(k))
        assert (scores.image_colours(item["image"][None])[0] * 2 - 1 - bg.flatten()).abs().max() < 0.06
    test = dm.dataset("test")
    assert [test[i]["label"] for i in range(4)] == [0, 1, 2, 3]  # interleaved by scheme
    digit = BuiltinMultiDomain(domain="palette-digits", second_view=False)
    assert digit.domains == tuple(str(k) for k in range(10)) and digit.colour_scheme("2") is None
    with pytest.raises(UserError, match="palette-digits"):
        BuiltinMultiDomain(domain="colored-digits", classes="scheme")
    with pytest.raises(UserError, match="data.classes"):
        BuiltinMultiDomain(domain="palette-digits", classes="colour")


def test_scheme_scores_known_answers():
    schemes = torch.tensor(PALETTE, dtype=torch.float32)  # (4, 2, 3): (fg, bg)
    fg, bg = _scheme(3)
    m = torch.zeros(2, 1, 32, 32)
    m[:, :, 8:24, 10:22] = 1  # 192 pixels, above 15% of 1,024: the foreground estimate is pure foreground
    img = bg * (1 - m) + fg * m
    hit, err = scores.scheme_scores(img, schemes, 3)
    assert hit.tolist() == [1.0, 1.0] and err.max() < 1e-6
    hit, err = scores.scheme_scores(img, schemes, 0)
    want = (schemes[3] - schemes[0]).abs().mean()
    assert hit.tolist() == [0.0, 0.0] and torch.allclose(err.float(), want.expand(2), atol=1e-6)
    b, f = scores.image_colours(img)
    assert torch.allclose(b, schemes[3, 1].expand(2, 3), atol=1e-6) and torch.allclose(f, schemes[3, 0].expand(2, 3))


class _Recolour(torch.nn.Module):
    """The exact answer up to the noise: the source's digit recoloured into the target scheme (or, with
    ``copy_reference``, the reference returned as it is)."""

    def __init__(self, copy_reference=False):
        super().__init__()
        self.copy_reference = copy_reference

    def translate(self, x, direction, reference=None):
        if self.copy_reference:
            return reference
        s, t = (int(v) for v in direction.split("to"))
        (sfg, sbg), (fg, bg) = _scheme(s), _scheme(t)
        m = (((x - sbg) * (sfg - sbg)).sum(1, keepdim=True) / ((sfg - sbg) ** 2).sum(1, keepdim=True)).clamp(0, 1)
        return bg * (1 - m) + fg * m


def test_evaluator_scheme_metrics_and_content_accuracy():
    dm = BuiltinMultiDomain(domain="palette-digits", classes="scheme", labelled=True, second_view=False)
    r = evaluate_model(_Recolour(), dm, ["acc", "scheme_rate", "scheme_error"], directions=["0to1", "2to3"])
    for d in ("0to1", "2to3"):
        assert r[f"scheme_rate_{d}"] == 1.0 and r[f"scheme_error_{d}"] < 0.12
        assert r[f"acc_{d}"] > 0.9  # the digit (content_label), not the scheme, is what acc scores
    ident = evaluate_model(_Copy(), dm, ["acc", "scheme_rate"], directions=["0to1"])
    assert ident["scheme_rate_0to1"] == 0.0 and ident["acc_0to1"] > 0.9
    with pytest.raises(UserError, match="colour-scheme"):
        evaluate_model(_Copy(), BuiltinMultiDomain(domain="palette-digits", second_view=False), ["scheme_rate"],
                       directions=["0to1"])


class _Copy(torch.nn.Module):
    def translate(self, x, direction, reference=None):
        return x


def test_ref_acc_scores_the_reference_label():
    dm = BuiltinMultiDomain(domain="colored-digits", labelled=True, second_view=False)
    r = evaluate_model(_Recolour(copy_reference=True), dm, ["acc", "ref_acc"], directions=["3to8"], reference=True)
    assert r["ref_acc_3to8"] > 0.9 and r["acc_3to8"] < 0.1  # the reference's digit drawn, the source's lost
    r = evaluate_model(_Copy(), dm, ["acc", "ref_acc"], directions=["3to8"])
    assert "ref_acc_3to8" not in r and r["acc_3to8"] > 0.9  # no reference: skipped with a note


# ------------------------------------------------------------------------------------- the shipped configs
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--data.init_args.batch_size", "4",
         "--data.init_args.num_workers", "0"]
FUNIT_TINY = ["--model.init_args.nf", "8", "--model.init_args.nf_mlp", "16", "--model.init_args.latent_dim", "8",
              "--model.init_args.n_res_blks", "1", "--model.init_args.dis_nf", "8",
              "--model.init_args.dis_n_res_blks", "4", "--trainer.max_steps", "4", *QUIET]
SG2_TINY = ["--model.init_args.base_dim", "4", "--model.init_args.max_conv_dim", "8",
            "--model.init_args.hidden_dim", "8", "--model.init_args.style_dim", "4",
            "--model.init_args.latent_dim", "4", "--trainer.max_steps", "12", *QUIET]

def test_palette_configs_train_and_score_schemes(tmp_path, cli_env):
    """FUNIT's and StarGAN v2's palette configs through the CLI (tiny nets, 2 iterations): the four schemes
    are the classes, and their end-of-fit metrics are the digit kept and the target scheme taken."""
    import json

    from lit_i2i.cli import main
    from helpers import cli_fit

    ckpts = {}
    for name, config, tiny in (("funit", "experiments/funit/digits_palette.yaml", FUNIT_TINY),
                               ("stargan_v2", "experiments/stargan_v2/digits_palette.yaml", SG2_TINY)):
        ckpts[name] = ckpt, state = cli_fit(tmp_path / name, config, *tiny, "--data.init_args.train_limit", "16",
                              "--metrics.max_samples", "8", "--metrics.directions", "[0to1, 3to0]")
        assert state["iteration"] == 2
        summary = json.loads((tmp_path / name / "run" / "metrics.json").read_text())
        for d in ("0to1", "3to0"):
            assert 0 <= summary[f"val/acc_{d}"] <= 1 and 0 <= summary[f"val/scheme_rate_{d}"] <= 1
            assert 0 <= summary[f"val/scheme_error_{d}"] <= 1 and f"val/fid_digits_{d}" in summary
    # lit-i2i evaluate --reference on the StarGAN v2 run: the reference-guided numbers, a list of directions too
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--ckpt", str(ckpt), "--metrics", "acc,scheme_rate", "--directions", "0to1,2to3",
                 "--reference", "2to3", "--max_samples", "8", "--out", str(out)]) == 0
    got = json.loads(out.read_text())["metrics"]
    assert {"acc_0to1", "scheme_rate_0to1", "acc_2to3", "scheme_rate_2to3"} <= set(got)
    assert main(["evaluate", "--ckpt", str(ckpt), "--metrics", "acc", "--directions", "0to1", "--reference", "2to9",
                 "--max_samples", "8", "--out", str(tmp_path / "bad.json")]) == 2  # not an evaluated direction
    assert not (tmp_path / "bad.json").exists()
    # where the digit is lost (experiments/where_content_is_lost.py): one row per direction d -> d + 1, shares in [0, 1]
    from experiments.where_content_is_lost import main as diagnose

    out = tmp_path / "diag.json"
    assert diagnose(["--ckpt", str(ckpts["funit"][0]), "--ckpt", str(ckpts["stargan_v2"][0]), "--out", str(out)]) == 0
    diag = json.loads(out.read_text())
    assert [v["method"] for v in diag.values()] == ["funit", "stargan_v2"]
    for v, cols in zip(diag.values(), ({"recon", "swap", "cross"}, {"recon", "swap", "cross", "cycle"})):
        assert list(v["rows"]) == ["0to1", "1to2", "2to3", "3to0"]
        for r in v["rows"].values():
            assert set(r) == cols | {"content_effect"} and r["content_effect"] >= 0
            assert all(0 <= r[c] <= 1 for c in cols)


def test_content_effect_known_answers():
    from experiments.where_content_is_lost import _content_effect

    x = torch.rand(6, 3, 8, 8) * 2 - 1
    perm = torch.tensor([1, 2, 3, 4, 5, 0])
    assert _content_effect(x, x, perm) == pytest.approx(1.0)  # the output is the source: follows it fully
    assert _content_effect(x[:1].expand_as(x), x, perm) == 0.0  # one template whatever the source
    assert _content_effect(0.5 * x, x, perm) == pytest.approx(0.5)
