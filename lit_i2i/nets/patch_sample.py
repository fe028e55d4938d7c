"""CUT's patch sampler ``netF`` (``PatchSampleF`` in ``models/networks.py`` of
taesungp/contrastive-unpaired-translation, b3ac297; ``--netF mlp_sample`` / ``sample``).

For each feature map (N, C, H, W) of the generator's encoder: flatten it to (N, H*W, C), pick the
same ``num_patches`` random locations for every image of the batch (a fresh permutation per layer,
or the ``patch_ids`` of an earlier call, so that the query and key features of one location are
compared), project each sampled C-vector with that layer's 2-layer MLP (Linear(C, nc), ReLU,
Linear(nc, nc); ``use_mlp=False``: no projection) and L2-normalise it (``x / (||x|| + 1e-7)``).
Output per layer: (N * num_patches, nc), image-major (rows n*P .. n*P + P - 1 are image n).

Departure from the official code: the MLPs are built by the constructor from the channel counts
(``in_channels``), which the CUT module reads off its generator in ``setup()``; the official code
builds them lazily inside the first forward pass (``create_mlp``), after the optimizers exist,
which is why it needs ``data_dependent_initialize`` and breaks under multi-GPU training (CUT issue
2). Locations are drawn with torch's generator (``torch.randperm`` on the CPU) instead of numpy's
(``np.random.permutation``): both are seeded by ``seed_everything`` and saved in the checkpoints.
Parameters: nc 256 on the resnet_9blocks layers 0, 4, 8, 12, 16 (3, 128, 256, 256, 256 channels):
560,384, as the official netF.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .init import init_weights


def l2_normalize(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """``x / (||x||_2 + eps)`` along dim 1 (the official ``Normalize(2)``).

    The norm is ``torch.linalg.vector_norm`` (the same value to float rounding, ~3e-8): the official
    ``x.pow(2).sum(1).pow(0.5)`` has a NaN gradient where a feature vector is exactly 0: a location
    where every channel of a ReLU layer is 0 (likely with few channels) stays 0 through F's MLP, whose
    biases start at 0; with ngf 4 on the built-in digits this made every weight NaN within 4 steps."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + eps)


class PatchSampleF(nn.Module):
    def __init__(self, in_channels: Sequence[int], nc: int = 256, use_mlp: bool = True, init_type: str = "xavier",
                 init_gain: float = 0.02):
        super().__init__()
        self.in_channels, self.nc, self.use_mlp = list(in_channels), nc, use_mlp
        if use_mlp:
            self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)) for c in in_channels)
            init_weights(self, init_type, init_gain)

    def forward(self, feats: Sequence[torch.Tensor], num_patches: int = 256,
                patch_ids: Sequence[torch.Tensor] | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if len(feats) != len(self.in_channels):
            raise ValueError(f"PatchSampleF was built for {len(self.in_channels)} layers, got {len(feats)} feature maps")
        if num_patches < 1:
            raise ValueError(f"num_patches must be >= 1, got {num_patches}")
        out, ids = [], []
        for i, feat in enumerate(feats):
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)  # (N, H*W, C)
            if patch_ids is not None:
                pid = patch_ids[i].to(feat.device)
            else:
                pid = torch.randperm(flat.shape[1])[:min(num_patches, flat.shape[1])].to(feat.device)
            x = flat[:, pid, :].flatten(0, 1)  # (N * P, C)
            if self.use_mlp:
                x = self.mlps[i](x)
            out.append(l2_normalize(x))
            ids.append(pid)
        return out, ids
