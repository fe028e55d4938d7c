"""AttGAN: He, Zuo, Kan, Shan, Chen, "AttGAN: Facial Attribute Editing by Only Changing What You Want",
IEEE TIP 2019 (arXiv 1711.10678). Not in ../shared/PAPERS.md; the spec followed here is the official
code, LynnHo/AttGAN-Tensorflow@f1231fc (``train.py``, ``module.py``, ``data.py``, ``tfprob/gan``),
``model_128``; networks in ``lit_i2i/nets/attgan.py``. The "He et al." rows of MBU Table 6.

Spec. G = decoder(encoder(x), v): a U-Net-like encoder-decoder (5 stride-2 conv/BN/LeakyReLU layers
64..1024; 5 transposed convs back, one skip (the 8x8 encoder feature) and the attribute vector
injected at the bottleneck and once more after the first up-layer), v = 2b − 1 in {−1, 1}^K for
target attributes b in {0, 1}^K. D: 5 conv/IN/LeakyReLU layers and two fully connected heads (1024
hidden): an adversarial logit (WGAN-GP) and K attribute logits (the attribute classifier C, sharing
D's trunk). Training (``train.py``): each step takes its own batch (x, a) and draws b = a shuffled in
the batch (``tf.random_shuffle``); steps 1, 2, ... alternate as ``n_d`` D steps then one G step
(step s trains G when s % (n_d + 1) == 0). Per-step losses:

| step | term | formula | weight (default) |
|---|---|---|---|
| D | loss_D_gan | −mean D(x) + mean D(G(x, 2b − 1)) (``wgan``) | 1 |
| D | loss_D_gp | mean (‖∇ D(x̂)‖₂ − 1)², x̂ on the line between x and the fake (``1-gp``, ``line``) | d_gradient_penalty_weight = 10 |
| D | loss_D_att | mean BCE-with-logits(C(x), a) (over batch and attributes) | d_attribute_loss_weight = 1 |
| G | loss_G_gan | −mean D(G(x, 2b − 1)) | 1 |
| G | loss_G_att | mean BCE-with-logits(C(G(x, 2b − 1)), b) | g_attribute_loss_weight = 10 |
| G | loss_G_rec | mean ‖x − G(x, 2a − 1)‖₁ | g_reconstruction_loss_weight = 100 |
| D, G | loss_D_reg, loss_G_reg | weight_decay · Σ ‖w‖²/2 over conv / fc weights (``slim.l2_regularizer``) | weight_decay = 0 |

Also as the official options: ``adversarial_loss_mode`` gan / hinge_v1 / hinge_v2 / lsgan / wgan,
``gradient_penalty_mode`` none / 1-gp / 0-gp / lp, ``gradient_penalty_sample_mode`` line / real /
fake / dragan. Adam(2e-4, beta1 0.5; TF's beta2 0.999), batch 32, 60 epochs: constant for 30, then
linear decay to 0 (``tl.LinearDecayLR`` per epoch = the suite's ``linear`` policy with ``n_epochs`` 30,
``n_epochs_decay`` 30). The G of the D step runs in training mode (its BatchNorm moving averages are
updated there too, as TF-slim's in-place updates); sampling and testing use the moving averages
(``training=False``): ``translate`` runs in eval mode. Test-time editing: v = 2b − 1 with the edited
attributes multiplied by ``test_int`` = 2 (``test.py``); the slider (``test_slide.py``) sets one entry
of v directly (``mode="slide:NAME=VALUE"``). Attributes (``att_names``): Bald, Bangs, Black_Hair,
Blond_Hair, Brown_Hair, Bushy_Eyebrows, Eyeglasses, Male, Mouth_Slightly_Open, Mustache, No_Beard,
Pale_Skin, Young; flipping one to 1 applies ``check_attribute_conflict`` (hair colours exclusive;
Bald / Receding_Hairline vs Bangs; Straight vs Wavy). Parameter counts (128x128, 13 attributes):
G 43,459,203, D 44,718,990.

Data: CelebA with the attribute list, 128x128, random flip; split (``data.py`` of STGAN, which follows
AttGAN): images 1-182,000 train, 182,001-182,637 validation, the rest test (``split_protocol: attgan``).

Departures from the official code:
  - Images: the current official code trains on its own re-aligned CelebA (572x572 crops of the
    unaligned images, ``scripts/align.py``), resized to 143 and randomly cropped to 128. The configs here
    read the standard ``img_align_celeba``: centre crop 170 (STGAN's 170x170 box at rows 26-196, columns
    3-173, is 2 pixels higher and 1 to the left), resize 143, random crop 128 (evaluation: centre crop
    170, resize 128, no 143 -> 128 centre crop).
  - Adam's epsilon is PyTorch's (added to sqrt(v̂)), TF's is added to sqrt(v) (the same up to a
    factor sqrt(1 − β2^t) on epsilon, negligible after the first steps).
  - Source attributes at translation: given (``source_attributes``), or read by C (D's attribute head) when
    not; the official test reads them from the label file. Two-domain data: one attribute "is B".
  - Exact resume (both Adam states, the LR schedule, the iteration, the RNG states); ``loss_D`` / ``loss_G``
    are logged as the sums.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_i2i.methods.stargan import AttributeEditor
from lit_i2i.nets.attgan import AttDiscriminator, AttGenerator

#: the official ``default_att_names`` (AttGAN and STGAN)
ATTGAN13 = ("Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Bushy_Eyebrows", "Eyeglasses", "Male",
            "Mouth_Slightly_Open", "Mustache", "No_Beard", "Pale_Skin", "Young")
ADV_MODES = ("gan", "hinge_v1", "hinge_v2", "lsgan", "wgan")
GP_MODES = ("none", "1-gp", "0-gp", "lp")
GP_SAMPLES = ("line", "real", "fake", "dragan")


def adversarial_losses(mode: str, real: torch.Tensor | None, fake: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``tfprob.get_adversarial_losses_fn(mode)``: D's (real loss, fake loss) when ``real`` is given,
    else G's loss on ``fake`` (each a mean)."""
    fake = fake.float()
    if real is None:
        if mode == "gan":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if mode == "hinge_v1":
            return F.relu(1 - fake).mean()
        if mode == "lsgan":
            return F.mse_loss(fake, torch.ones_like(fake))
        return -fake.mean()  # wgan, hinge_v2
    real = real.float()
    if mode == "gan":
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)),
                F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if mode in ("hinge_v1", "hinge_v2"):
        return F.relu(1 - real).mean(), F.relu(1 + fake).mean()
    if mode == "lsgan":
        return F.mse_loss(real, torch.ones_like(real)), F.mse_loss(fake, torch.zeros_like(fake))
    return -real.mean(), fake.mean()  # wgan


def gradient_penalty(f, real: torch.Tensor, fake: torch.Tensor, mode: str = "1-gp",
                     sample: str = "line") -> torch.Tensor:
    """``tfprob.gradient_penalty``: the penalty on ‖∇ f(x̂)‖₂ per image at samples x̂ (``line``: a uniform point
    between real and fake per image; ``dragan``: between real and real + 0.5 std(real) U(0, 1) noise)."""
    if mode == "none":
        return real.new_zeros((), dtype=torch.float32)
    real, fake = real.detach(), fake.detach()
    if sample == "dragan":
        fake = real + 0.5 * real.float().std(unbiased=False).to(real.dtype) * torch.rand_like(real)
    if sample in ("line", "dragan"):
        alpha = torch.rand(real.shape[0], *[1] * (real.ndim - 1), device=real.device, dtype=real.dtype)
        x = real + alpha * (fake - real)
    else:
        x = real if sample == "real" else fake
    x = x.requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x).float().sum(), x, create_graph=True)
    norm = grad.flatten(1).float().norm(2, dim=1)
    if mode == "1-gp":
        return ((norm - 1) ** 2).mean()
    if mode == "0-gp":
        return (norm ** 2).mean()
    return (F.relu(norm - 1) ** 2).mean()  # lp


def l2_regularization(module: nn.Module, scale: float) -> torch.Tensor | None:
    """``slim.l2_regularizer(scale)`` summed over the conv / transposed conv / fc weights: scale · Σ ‖w‖²/2."""
    if not scale:
        return None
    ws = [m.weight for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    return scale * sum(0.5 * w.float().pow(2).sum() for w in ws)


class AttGAN(AttributeEditor):
    method_name = "attgan"
    generators = {"AtoB": "G", "BtoA": "G"}
    conflict_rules = "attgan"
    grid_reconstruction = True
    #: the G step decodes the reconstruction before the edit (AttGAN) or after it (STGAN)
    rec_first = True

    def __init__(self, attributes: list[str] | None = None, edits: dict[str, str] | None = None,
                 image_size: int = 128, channels: int = 3, enc_dim: int = 64, dec_dim: int = 64, dis_dim: int = 64,
                 dis_fc_dim: int = 1024, n_layers: int = 5, dis_layers: int = 5, shortcut_layers: int = 1,
                 inject_layers: int = 1, adversarial_loss_mode: str = "wgan", gradient_penalty_mode: str = "1-gp",
                 gradient_penalty_sample_mode: str = "line", d_gradient_penalty_weight: float = 10.0,
                 d_attribute_loss_weight: float = 1.0, g_attribute_loss_weight: float = 10.0,
                 g_reconstruction_loss_weight: float = 100.0, weight_decay: float = 0.0, n_d: int = 5,
                 lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999, test_int: float = 2.0,
                 lr_policy: str = "linear", n_epochs: int = 30, n_epochs_decay: int = 30, lr_interval: str = "epoch"):
        super().__init__(lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay, lr_interval=lr_interval)
        self.save_hyperparameters()
        self.build(list(attributes or ATTGAN13), edits, image_size, channels,
                   dict(dim=enc_dim, dec_dim=dec_dim, n_layers=n_layers, shortcut_layers=shortcut_layers,
                        inject_layers=inject_layers),
                   dict(dim=dis_dim, fc_dim=dis_fc_dim, n_layers=dis_layers),
                   adversarial_loss_mode, gradient_penalty_mode, gradient_penalty_sample_mode,
                   dict(gp=d_gradient_penalty_weight, d_att=d_attribute_loss_weight, g_att=g_attribute_loss_weight,
                        rec=g_reconstruction_loss_weight), weight_decay, n_d, lr, (beta1, beta2), test_int)

    def build(self, attributes, edits, image_size, channels, g: dict, d: dict, adv: str, gp_mode: str,
              gp_sample: str, weights: dict, weight_decay: float, n_d: int, lr: float, betas, test_int: float) -> None:
        """The nets and the loss settings (shared with STGAN, whose options are named differently)."""
        for value, choices, opt in ((adv, ADV_MODES, "adversarial loss mode"), (gp_mode, GP_MODES, "gradient penalty"),
                                    (gp_sample, GP_SAMPLES, "gradient penalty sample mode")):
            if value not in choices:
                raise ValueError(f"{opt} must be one of {', '.join(choices)}, got {value!r}")
        if n_d < 1:
            raise ValueError(f"n_d must be at least 1, got {n_d}")
        self.init_attributes(attributes, "multi", edits, image_size, channels)
        self.G = AttGenerator(self.n_attributes, in_ch=channels, **g)
        self.D = AttDiscriminator(self.n_attributes, image_size, in_ch=channels, **d)
        self.adv, self.gp_mode, self.gp_sample, self.weights = adv, gp_mode, gp_sample, weights
        self.weight_decay, self.n_d, self.lr, self.betas, self.test_int = weight_decay, n_d, lr, tuple(betas), test_int

    def build_optimizers(self):
        return {"D": torch.optim.Adam(self.D.parameters(), self.lr, self.betas),
                "G": torch.optim.Adam(self.G.parameters(), self.lr, self.betas)}

    # ------------------------------------------------------------------ attribute inputs
    def input_label(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The attribute input of G for target b (training): 2b − 1."""
        return b * 2 - 1

    def d_turn(self, iteration: int) -> bool:
        """Whether iteration ``iteration`` (0-based; the official step is iteration + 1) trains D."""
        return (iteration + 1) % (self.n_d + 1) != 0

    # ------------------------------------------------------------------ losses
    def discriminator_losses(self, x: torch.Tensor, a: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        gan_r, att_r = self.D(x)
        gan_f, _ = self.D(fake.detach())
        real_loss, fake_loss = adversarial_losses(self.adv, gan_r, gan_f)
        out = {"D_gan": real_loss + fake_loss,
               "D_gp": gradient_penalty(lambda t: self.D(t)[0], x, fake, self.gp_mode, self.gp_sample),
               "D_att": F.binary_cross_entropy_with_logits(att_r.float(), a.float())}
        reg = l2_regularization(self.D, self.weight_decay)
        if reg is not None:
            out["D_reg"] = reg
        return out

    def generator_losses(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        zs = self.G.encode(x)
        la, lb = self.input_label(a, a), self.input_label(a, b)
        if self.rec_first:
            rec = self.G.decode(zs, la)
            fake = self.G.decode(zs, lb)
        else:
            fake = self.G.decode(zs, lb)
            rec = self.G.decode(zs, la)
        gan_f, att_f = self.D(fake)
        out = {"G_gan": adversarial_losses(self.adv, None, gan_f),
               "G_att": F.binary_cross_entropy_with_logits(att_f.float(), b.float()),
               "G_rec": (x.float() - rec.float()).abs().mean()}
        reg = l2_regularization(self.G, self.weight_decay)
        if reg is not None:
            out["G_reg"] = reg
        return out

    def training_step(self, batch, batch_idx):
        w = self.weights
        x, a = self.parse_batch(batch)
        b = a[torch.randperm(len(a)).to(a.device)]
        if self.d_turn(self.iteration):
            with torch.no_grad():
                fake = self.G(x, self.input_label(a, b))
            d = self.discriminator_losses(x, a, fake)
            loss = d["D_gan"] + w["gp"] * d["D_gp"] + w["d_att"] * d["D_att"] + d.get("D_reg", 0)
            self.step("D", loss)
            self.log_losses({"D": loss, **d})
        else:
            g = self.generator_losses(x, a, b)
            loss = g["G_gan"] + w["g_att"] * g["G_att"] + w["rec"] * g["G_rec"] + g.get("G_reg", 0)
            self.step("G", loss)
            self.log_losses({"G": loss, **g})

    # ------------------------------------------------------------------ translation
    def attribute_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.D(x)[1]

    def test_label(self, a: torch.Tensor, b: torch.Tensor, edited: torch.Tensor, raw: tuple,
                   intensity: float | None) -> torch.Tensor:
        """``test.py``: v = 2b − 1, the edited attributes times ``test_int``; slider values set directly."""
        t = self.test_int if intensity is None else intensity
        v = b * 2 - 1
        v = torch.where(edited, v * t, v)
        return torch.where(raw[0], raw[1], v)

    def generate(self, x, a, b, edited, raw, intensity=None):
        return self.G(x, self.test_label(a, b, edited, raw, intensity))
