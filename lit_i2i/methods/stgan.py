"""STGAN: Liu, Ding, Xia, Liu, Ding, Zuo, Wen, "STGAN: A Unified Selective Transfer Network for Arbitrary
Image Attribute Editing", CVPR 2019. Not in ../shared/PAPERS.md; the spec followed here is the official
code, csmliu/STGAN@8a206ad (``train.py``, ``models.py``, ``data.py``, ``test.py``); networks in
``lit_i2i/nets/attgan.py``. The "Liu et al." rows of MBU Table 6. It is built on AttGAN's code and
this class on :class:`~lit_i2i.methods.attgan.AttGAN` (same discriminator, losses and step cadence).

Spec. Attributes enter as the *difference* vector: with a, b in {0, 1}^K (source, target) and
``thres_int`` t = 0.5, â = (2a − 1) t, b̂ = (2b − 1) t, the input is b̂ − â (``label: diff``, default; entries
0 for kept attributes, ±1 for changed ones) or b̂ (``label: target``). G = decoder(STUs(encoder(x), ·), ·):
the AttGAN encoder (5 layers 64..1024); four selective transfer units (``Gstu``: convolutional-GRU-like
cells, 3x3 gates, no normalisation, the state starting from the bottleneck and the difference vector,
the vector injected into every unit's state) replace the four skips by selected features; the decoder
takes all four (``shortcut_layers`` 4) and the vector after every up-layer (``inject_layers`` 4). D: AttGAN's
(5 conv/IN/LeakyReLU layers, fc heads 1024, an adversarial logit and K attribute logits). Each step takes
its own batch and b = a shuffled in the batch; per iteration ``n_d`` = 5 D steps then one G step
(the same cadence as AttGAN's counter).

| step | term | formula | weight (default) |
|---|---|---|---|
| D | loss_D_gan | −(mean D(x) − mean D(G(x, b̂ − â))) (``mode: wgan``) | 1 |
| D | loss_D_gp | mean (‖∇ D(x̂)‖₂ − 1)², x̂ between x and the fake | 10 |
| D | loss_D_att | mean BCE-with-logits(C(x), a) | 1 |
| G | loss_G_gan | −mean D(G(x, b̂ − â)) | 1 |
| G | loss_G_att | mean BCE-with-logits(C(G(x, b̂ − â)), b) | 10 |
| G | loss_G_rec | mean ‖x − G(x, â − â = 0)‖₁ | rec_loss_weight = 100 |

``mode: lsgan`` / ``dcgan`` (official options): least-squares / cross-entropy GAN losses with the
penalty at DRAGAN samples around the real images. Adam(2e-4, beta1 0.5), batch 32, 200 epochs,
the rate divided by 10 after epoch 100 (``lr_base / 10 ** (epoch // init_epoch)`` = the suite's ``step``
policy, step 100, gamma 0.1). Test (``test.py``): b̂ with the edited attributes multiplied by ``test_int`` = 1,
minus â (a flipped attribute gives ±1, as in training); the slider sets b̂ of one attribute directly
(``mode="slide:NAME=VALUE"``, official range −1..1). Evaluation of G in eval mode (BatchNorm moving
averages, ``is_training=False``). Attributes and conflicts as AttGAN's (13 attributes). Data
(``data.py``): ``img_align_celeba`` cropped to the 170x170 box at rows 26, columns 3, bicubic resize to
128, no flip; images 1-182,000 train, 182,001-182,637 validation, the rest test (``split_protocol: attgan``).
Parameter counts (128x128, 13 attributes): G 74,998,771 (encoder 11,148,160, STUs 30,145,280, decoder
33,705,331), D 44,718,990.

Departures from the official code:
  - The crop: a centre crop of 170 (rows 24-194, columns 4-174) instead of the box at rows 26-196, columns
    3-173 (2 pixels lower, 1 to the right); resize bicubic with antialiasing (TF's ``resize_images``
    bicubic has none).
  - An "epoch" is one pass over the training loader (floor(N / 32) batches); the official counts
    ``N // (32 · 6)`` iterations of 6 batches (at most 5 batches fewer), which moves the step of the rate
    by at most 500 batches in 200 epochs.
  - ``train.py`` samples training grids with the edited entries times ``test_int / thres_int``; ``test.py``
    times ``test_int``. The port follows ``test.py`` everywhere (grids included).
  - Source attributes at translation: given, or read by D's attribute head; two-domain data: one attribute.
  - Exact resume (both Adam states, the rate schedule, the iteration, the RNG states).
"""

from __future__ import annotations

import torch

from lit_i2i.methods.attgan import ATTGAN13, AttGAN
from lit_i2i.methods.stargan import AttributeEditor

LABELS = ("diff", "target")
MODES = {"wgan": ("wgan", "line"), "lsgan": ("lsgan", "dragan"), "dcgan": ("gan", "dragan")}


class STGAN(AttGAN):
    method_name = "stgan"
    rec_first = False  # official: xb_ = G(x, b) first, then xa_ (BatchNorm moving averages in that order)

    def __init__(self, attributes: list[str] | None = None, edits: dict[str, str] | None = None,
                 image_size: int = 128, channels: int = 3, enc_dim: int = 64, dec_dim: int = 64, dis_dim: int = 64,
                 dis_fc_dim: int = 1024, n_layers: int = 5, dis_layers: int = 5, shortcut_layers: int = 4,
                 inject_layers: int = 4, label: str = "diff", use_stu: bool = True, stu_dim: int = 64,
                 stu_layers: int = 4, stu_inject_layers: int = 4, stu_kernel_size: int = 3, stu_norm: str = "none",
                 stu_state: str = "stu", multi_inputs: int = 1, one_more_conv: int = 0,
                 rec_loss_weight: float = 100.0, mode: str = "wgan", n_d: int = 5, lr: float = 2e-4,
                 beta1: float = 0.5, beta2: float = 0.999, thres_int: float = 0.5, test_int: float = 1.0,
                 lr_policy: str = "step", lr_step_size: int = 100, lr_gamma: float = 0.1, n_epochs: int = 100,
                 n_epochs_decay: int = 100, lr_interval: str = "epoch"):
        AttributeEditor.__init__(self, lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                                 lr_interval=lr_interval, lr_step_size=lr_step_size, lr_gamma=lr_gamma)
        self.save_hyperparameters()
        if label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}, got {label!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.label, self.thres_int = label, thres_int
        adv, sample = MODES[mode]
        g = dict(dim=enc_dim, dec_dim=dec_dim, n_layers=n_layers, shortcut_layers=shortcut_layers,
                 inject_layers=inject_layers, multi_inputs=multi_inputs, one_more_conv=one_more_conv, use_stu=use_stu,
                 stu_dim=stu_dim, stu_layers=stu_layers, stu_inject_layers=stu_inject_layers,
                 stu_kernel_size=stu_kernel_size, stu_norm=stu_norm, stu_state=stu_state)
        self.build(list(attributes or ATTGAN13), edits, image_size, channels, g,
                   dict(dim=dis_dim, fc_dim=dis_fc_dim, n_layers=dis_layers), adv, "1-gp", sample,
                   dict(gp=10.0, d_att=1.0, g_att=10.0, rec=rec_loss_weight), 0.0, n_d, lr, (beta1, beta2), test_int)

    def input_label(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """b̂ − â (``diff``) or b̂ (``target``), with x̂ = (2x − 1) thres_int."""
        t = self.thres_int
        _b = (b * 2 - 1) * t
        return _b - (a * 2 - 1) * t if self.label == "diff" else _b

    def test_label(self, a, b, edited, raw, intensity):
        """``test.py``: b̂ with the edited attributes times ``test_int``, slider values set directly, minus â."""
        t = self.test_int if intensity is None else intensity
        _b = (b * 2 - 1) * self.thres_int
        _b = torch.where(raw[0], raw[1], torch.where(edited, _b * t, _b))
        return _b - (a * 2 - 1) * self.thres_int if self.label == "diff" else _b
