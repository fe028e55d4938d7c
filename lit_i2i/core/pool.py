"""The image history buffer of CycleGAN (Shrivastava et al.; junyanz ``util/image_pool.py``).

The discriminator is shown fakes drawn from a pool of the last ``size`` generated images: while the
pool is filling, each new fake is stored and returned; once full, with probability 1/2 a new fake
replaces a random stored one and the stored one is returned instead, else the new fake is returned.
``size == 0`` disables the pool. Randomness comes from torch's global RNG (restored on resume), and
the pool's content is part of the checkpoint (``state_dict``).
"""

from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(()) > 0.5:
                j = int(torch.randint(0, self.size, ()))
                old = self.images[j].clone()
                self.images[j] = img.clone()
                out.append(old.to(img.device))
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": torch.cat(self.images).cpu() if self.images else None}

    def load_state_dict(self, state: dict, device: torch.device | str | None = None) -> None:
        self.size = state["size"]
        imgs = state["images"]
        self.images = [] if imgs is None else [i.unsqueeze(0).to(device) for i in imgs]

    def __len__(self) -> int:
        return len(self.images)
