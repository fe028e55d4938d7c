"""lit-i2i: image-to-image translation research on PyTorch Lightning."""

__version__ = "0.1.0"
