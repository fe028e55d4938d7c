"""PatchNCE (Park, Efros, Zhang, Zhu, "Contrastive Learning for Unpaired Image-to-Image Translation",
ECCV 2020), following ``models/patchnce.py`` of taesungp/contrastive-unpaired-translation (b3ac297).

For query patches q (features of the output at sampled locations) and key patches k (features of
the input at the same locations), both L2-normalised, (N * P, D) image-major:

    logits_i = [q_i . k_i, q_i . k_j for every other patch j of the same image] / tau
    loss_i   = cross-entropy(logits_i, class 0)           (one value per patch, reduction 'none')

The keys are detached (the input's features are a fixed target). Negatives come from the same
image only (``batch_size`` groups of P patches); ``all_negatives_from_minibatch=True`` (the
official SinCUT setting) treats the whole batch as one group of N * P patches. The official code
forms the full P x P similarity matrix and sets its diagonal (each patch against its own key, the
positive) to -10 before dividing by tau, so that entry stays in the softmax at weight ~exp(-10 / tau);
this is reproduced exactly. In float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patch_nce_loss(feat_q: torch.Tensor, feat_k: torch.Tensor, batch_size: int, temperature: float = 0.07,
                   all_negatives_from_minibatch: bool = False) -> torch.Tensor:
    """Per-patch PatchNCE losses, shape (N * P,); see the module docstring."""
    if feat_q.shape != feat_k.shape or feat_q.ndim != 2:
        raise ValueError(f"patch_nce_loss: expected two (N*P, D) tensors of one shape, got {tuple(feat_q.shape)} "
                         f"and {tuple(feat_k.shape)}")
    q, k = feat_q.float(), feat_k.detach().float()
    n, dim = q.shape
    groups = 1 if all_negatives_from_minibatch else batch_size
    if n % groups:
        raise ValueError(f"patch_nce_loss: {n} patches do not split into {groups} images")
    l_pos = (q * k).sum(1, keepdim=True)                                    # (n, 1)
    qg, kg = q.view(groups, -1, dim), k.view(groups, -1, dim)
    p = qg.shape[1]
    l_neg = torch.bmm(qg, kg.transpose(2, 1))                               # (groups, p, p)
    diagonal = torch.eye(p, device=q.device, dtype=torch.bool)[None]
    l_neg = l_neg.masked_fill(diagonal, -10.0).view(-1, p)                  # (n, p)
    logits = torch.cat([l_pos, l_neg], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=q.device), reduction="none")
