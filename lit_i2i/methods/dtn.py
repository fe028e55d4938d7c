"""DTN, the Domain Transfer Network: Taigman, Polyak, Wolf, "Unsupervised Cross-Domain Image
Generation", ICLR 2017. No official code; the XGAN paper and slides use it as their baseline.

G = g ∘ f: ``f`` is a fixed encoder pretrained on the source domain A (for digits the penultimate
layer of a classifier of A: a shipped :class:`~lit_i2i.metrics.classifier.DigitClassifier`'s 64-d
``features``, ``f_net: street-digits`` for the built-in SVHN stand-in, ``svhn`` for SVHN itself, made
by ``lit-i2i train-classifier --domain svhn --root DIR``; or ``package.module:factory`` for another
encoder, see ``lit_i2i.nets.xgan.fixed_encoder``), ``g`` a decoder to the target domain B. D is a
ternary discriminator: class 0 = G(source), 1 = G(target), 2 = real target.

| term | formula | weight (digits) |
|---|---|---|
| gan (L_GANG) | CE(D(G(s)), 2) + CE(D(G(t)), 2) | 1 |
| const (L_CONST) | ‖f(s) − f(G(s))‖² (mean) | alpha = 15 |
| tid (L_TID) | ‖t − G(t)‖² (mean) | beta = 15 |
| tv (L_TV) | mean over pixels of ((∂x G(s))² + (∂y G(s))²)^(B/2), B = 1 | gamma = 0 |
| cls (fine-tuned f only) | CE(head(f(s)), label(s)) on the labelled source batch | f_cls_w = 1 |
| loss_D | CE(D(G(s)), 0) + CE(D(G(t)), 1) + CE(D(t), 2) | 1 |

alpha = beta = 15, gamma = 0 are the paper's digit weights (SVHN -> MNIST; the face experiments use
alpha 100, beta 1, gamma 0.05). Order per iteration: D step (fakes from a no-grad G), then G step
(D frozen). Networks as the paper describes the digit model: g maps f's code (as a 1x1 map) through
four transposed-conv blocks (4x4; BatchNorm and ReLU on the first three; tanh at the end) to 32x32;
D is four 4x4 convs (stride 2, BatchNorm, ReLU; the last one valid, to 3 logits).

``finetune_f: true`` is the variant the XGAN slides report (DTN SVHN -> MNIST about 0.7 after 1,350
iterations, about 0.86 "with the embedding fine-tuned"): f's weights join the G optimizer (learning
rate ``f_lr``), so L_GANG, L_CONST and L_TID also move f. The slides do not say how the fine-tuned f
is kept from collapsing (a constant f satisfies L_CONST trivially); here [choice] f keeps its
classification head and the source labels' cross-entropy (``f_cls_w``; 0 turns it off), the same
supervision f was pretrained with. f's BatchNorm layers stay in eval mode (their pretrained
statistics) in both variants.

Choices where the paper is silent: Adam(3e-4, 0.5, 0.999) for G and D [as the public TensorFlow
reimplementation yunjey/domain-transfer-network, not checked]; the distances are means, not sums,
over code dimensions and pixels (so alpha and beta weigh per-element errors); ``ngf``/``ndf`` 64;
``f_lr`` = lr / 10 [choice]. ``translate`` has one direction, A->B (G applied to a target image is
the identity the L_TID term asks for, not a translation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_i2i.core.module import TranslationModule
from lit_i2i.errors import UserError
from lit_i2i.nets.xgan import fixed_encoder


def total_variation(x: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """DTN's L_TV with B = ``2 * power``: mean over pixels of ((x[i, j+1] - x[i, j])^2 +
    (x[i+1, j] - x[i, j])^2)^power, the differences summed over channels; in float32."""
    x = x.float()
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    sq = (dx.pow(2) + dy.pow(2)).sum(1)
    if power == 1:
        return sq.mean()
    eps = 1e-12  # a finite gradient at flat pixels; the offset keeps a flat image's value 0
    return ((sq + eps).pow(power) - eps ** power).mean()


class DTNGenerator(nn.Module):
    """g: a code of ``f_dim`` (as a 1x1 map) -> 4x4 (4 ngf) -> 8x8 (2 ngf) -> 16x16 (ngf) -> 32x32 image, tanh."""

    def __init__(self, f_dim: int = 64, ngf: int = 64, out_ch: int = 3, image_size: int = 32):
        super().__init__()
        n_up = image_size.bit_length() - 3  # 4x4, then doubled to image_size
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
        widths = [ngf * 2 ** (n_up - 1 - i) for i in range(n_up)]  # 32x32: 4 ngf, 2 ngf, ngf
        layers: list[nn.Module] = [nn.Unflatten(1, (f_dim, 1, 1)), nn.ConvTranspose2d(f_dim, widths[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for c_in, c in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], out_ch, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)


class TernaryDiscriminator(nn.Module):
    """D: 4x4 stride-2 convs ndf, 2 ndf, 4 ndf (BatchNorm, ReLU), then a 4x4 valid conv to 3 logits (32x32 input)."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, image_size: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c, size = in_ch, image_size
        while size > 4:
            w = ndf if c == in_ch else c * 2
            layers += [nn.Conv2d(c, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
            c, size = w, size // 2
        layers += [nn.Conv2d(c, 3, 4, 1, 0), nn.Flatten()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DTN(TranslationModule):
    method_name = "dtn"
    directions = ("AtoB",)

    def __init__(self, f_net: str = "street-digits", finetune_f: bool = False, f_cls_w: float = 1.0,
                 f_lr: float | None = None, out_ch: int = 3, image_size: int = 32, ngf: int = 64, ndf: int = 64,
                 alpha: float = 15.0, beta: float = 15.0, gamma: float = 0.0, tv_power: float = 0.5,
                 lr: float = 3e-4, beta1: float = 0.5, beta2: float = 0.999,
                 lr_policy: str = "constant", n_epochs: int = 100, n_epochs_decay: int = 100):
        super().__init__(lr_policy=lr_policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay)
        self.save_hyperparameters()
        self.f = fixed_encoder(f_net)  # frozen and in eval mode as loaded
        self.f.requires_grad_(bool(finetune_f))
        self.g = DTNGenerator(self.f.num_features, ngf, out_ch, image_size)
        self.dis = TernaryDiscriminator(out_ch, ndf, image_size)

    def train(self, mode: bool = True):
        super().train(mode)
        self.f.eval()  # f's BatchNorm keeps its pretrained statistics (module docstring)
        return self

    def build_optimizers(self):
        h = self.hparams
        groups = [{"params": list(self.g.parameters())}]
        if h.finetune_f:
            groups.append({"params": list(self.f.parameters()), "lr": h.f_lr if h.f_lr is not None else h.lr / 10})
        return {"D": torch.optim.Adam(self.dis.parameters(), lr=h.lr, betas=(h.beta1, h.beta2)),
                "G": torch.optim.Adam(groups, lr=h.lr, betas=(h.beta1, h.beta2))}

    # ------------------------------------------------------------------ forward
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.f.features(x)

    def G(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(self.encode(x))

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB", reference: torch.Tensor | None = None) -> torch.Tensor:
        if direction != "AtoB":
            raise ValueError(f"DTN translates ('AtoB',), not {direction!r}")
        return self.G(x)

    # ------------------------------------------------------------------ losses
    @staticmethod
    def _ce(logits: torch.Tensor, cls: int) -> torch.Tensor:
        return F.cross_entropy(logits.float(), torch.full((len(logits),), cls, dtype=torch.long, device=logits.device))

    def discriminator_loss(self, fake_s: torch.Tensor, fake_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._ce(self.dis(fake_s), 0) + self._ce(self.dis(fake_t), 1) + self._ce(self.dis(t), 2)

    def generator_losses(self, s: torch.Tensor, t: torch.Tensor, s_label: torch.Tensor | None = None
                         ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        h = self.hparams
        f_s = self.encode(s)
        fake_s, fake_t = self.g(f_s), self.G(t)
        losses = {"gan": self._ce(self.dis(fake_s), 2) + self._ce(self.dis(fake_t), 2),
                  "const": h.alpha * F.mse_loss(self.encode(fake_s).float(), f_s.float()),
                  "tid": h.beta * F.mse_loss(fake_t.float(), t.float())}
        if h.gamma > 0:
            losses["tv"] = h.gamma * total_variation(fake_s, h.tv_power)
        if h.finetune_f and h.f_cls_w > 0 and s_label is not None and bool((s_label >= 0).all()):
            losses["cls"] = h.f_cls_w * F.cross_entropy(self.f.head(f_s).float(), s_label)
        return losses, {"fake_B": fake_s, "idt_B": fake_t}

    def training_step(self, batch, batch_idx):
        s, t = batch["A"], batch["B"]
        if s.shape[1] != 3 and s.shape[1] != 1:
            raise UserError(f"DTN: f ({self.hparams.f_net} classifier) reads 1- or 3-channel images, got {s.shape[1]}")
        with torch.no_grad():
            fake_s, fake_t = self.G(s), self.G(t)
        loss_D = self.discriminator_loss(fake_s, fake_t, t)
        self.step("D", loss_D)
        label = batch.get("A_label")
        g, _ = self.generator_losses(s, t, torch.as_tensor(label, device=s.device) if label is not None else None)
        loss_G = sum(g.values())
        self.step("G", loss_G)
        self.log_losses({"G": loss_G, "D": loss_D, **g})

    @torch.no_grad()
    def visuals(self, batch):
        return {"real_A": batch["A"], "fake_B": self.G(batch["A"]), "real_B": batch["B"], "idt_B": self.G(batch["B"])}
