"""What every method shares: the TranslationModule base, GAN losses, image pool, LR schedules, grids."""

from lit_i2i.core.losses import (GAN_MODES, GANLoss, clip_weights_, feature_matching_loss, gradient_penalty,
                                 r1_penalty, recon_loss)
from lit_i2i.core.module import TranslationModule
from lit_i2i.core.pool import ImagePool
from lit_i2i.core.schedules import build_scheduler
from lit_i2i.core.visuals import save_grid, visual_grid

__all__ = ["GAN_MODES", "GANLoss", "ImagePool", "TranslationModule", "build_scheduler", "clip_weights_",
           "feature_matching_loss", "gradient_penalty", "r1_penalty", "recon_loss", "save_grid", "visual_grid"]
