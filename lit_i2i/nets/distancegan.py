"""The 2017 CycleGAN networks that DistanceGAN's CycleGAN-architecture code ships
(sagiebenaim/DistanceGAN f827205, ``cyclegan_arch/networks.py``: an early copy of
junyanz/pytorch-CycleGAN-and-pix2pix's ``networks.py``), built from the suite's current ones.

They differ from :class:`lit_i2i.nets.ResnetGenerator` / :class:`lit_i2i.nets.NLayerDiscriminator`
(instance norm) in three ways, and only these:

- zero padding everywhere: the 7x7 stem and output convs pad 3 with zeros (the current code uses
  ``ReflectionPad2d(3)``) and the residual blocks use ``padding_type='zero'`` (the 2017 code asserts it);
- ``InstanceNorm2d(affine=True)``: a learned scale and shift per channel (the current code has none);
- initialisation (``weights_init``): every conv and transposed conv weight ~ N(0, 0.02) with its bias
  left at PyTorch's default, every norm weight ~ N(1, 0.02) and bias 0.

So the layers, the strides and every conv's bias are those of the current nets, and the parameter
counts are theirs plus 2 x channels per norm layer: resnet_9blocks 11,388,675 (current: 11,378,179),
resnet_6blocks 7,845,123, PatchGAN ``basic`` 2,766,529 (current 2,764,737), as the 2017 code
counts them. Its PatchGAN pads its 4x4 convs by ``int(np.ceil((kw - 1) / 2))``, which is 1 under the
Python 2.7 the code was written for (``3 / 2 == 1``) and 2 under Python 3; 1 is used here. The 2017
code ran under PyTorch 0.1.12, whose InstanceNorm kept running statistics and used them in eval
mode, but its test path never calls ``.eval()``: every image was normalised with its own statistics,
which is what the non-tracking InstanceNorm here does in both modes.

The MNIST -> SVHN nets of ``cyclegan_arch/mnist_to_svhn/model.py`` (``G12`` / ``G21``, ``D1`` / ``D2``,
the mnist-svhn-transfer nets): :func:`digit_generator` is two 4x4 stride-2 convs, two 3x3 convs (not
residual) and two 4x4 stride-2 transposed convs, BatchNorm and LeakyReLU 0.05 after all but the last
(tanh), every conv bias-free; the OST ``G11`` plan (``nets.vae`` ``dcgan``) with nothing shared, so
it is built from that plan. The discriminator is the same code's ``D1`` / ``D2``,
:class:`lit_i2i.nets.vae.DCGANDiscriminator`. Counts at conv_dim 64: G12 (1 -> 3 channels) and G21
(3 -> 1) 562,176 each, D1 (1 channel) 661,248, D2 (3 channels) 663,296. PyTorch's default init, as the code.
"""

from __future__ import annotations

from torch import nn
from torch.nn import init

from .patchgan import NLayerDiscriminator
from .resnet import ResnetGenerator
from .vae import DCGANDiscriminator, VAESpec


def _replace(net: nn.Module) -> None:
    for name, child in list(net.named_children()):
        if isinstance(child, nn.ReflectionPad2d) and tuple(child.padding) == (3, 3, 3, 3):
            setattr(net, name, nn.ZeroPad2d(3))
        elif isinstance(child, nn.InstanceNorm2d):
            setattr(net, name, nn.InstanceNorm2d(child.num_features, affine=True))
        else:
            _replace(child)


def init_2017(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The 2017 ``weights_init``: conv weights N(0, gain) (biases untouched), norm weights N(1, gain), biases 0."""
    for m in net.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            init.normal_(m.weight, 0.0, gain)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            init.normal_(m.weight, 1.0, gain)
            init.constant_(m.bias, 0.0)
    return net


def resnet_generator_2017(in_ch: int = 3, out_ch: int = 3, ngf: int = 64, n_blocks: int = 9, n_down: int = 2,
                          use_dropout: bool = False, init_gain: float = 0.02) -> ResnetGenerator:
    net = ResnetGenerator(in_ch, out_ch, ngf, norm="instance", use_dropout=use_dropout, n_blocks=n_blocks,
                          n_down=n_down, padding_type="zero")
    _replace(net)
    return init_2017(net, init_gain)


def patchgan_2017(in_ch: int = 3, ndf: int = 64, n_layers: int = 3, init_gain: float = 0.02) -> NLayerDiscriminator:
    net = NLayerDiscriminator(in_ch, ndf, n_layers, norm="instance")
    _replace(net)
    return init_2017(net, init_gain)


def digit_generator(in_ch: int = 1, out_ch: int = 3, conv_dim: int = 64, norm: str = "batch") -> nn.Sequential:
    """The MNIST -> SVHN code's ``G12`` (``in_ch`` 1, ``out_ch`` 3) / ``G21`` (3, 1), for 32x32 images."""
    spec = VAESpec(arch="dcgan", ngf=conv_dim, n_down=2, n_unshared=2, n_res_unshared=0, n_res_shared=1, norm=norm)
    return nn.Sequential(spec.front(in_ch), spec.shared_encoder(), spec.shared_decoder(), spec.back(out_ch))


def digit_discriminator(in_ch: int = 3, conv_dim: int = 64, norm: str = "batch") -> DCGANDiscriminator:
    """The MNIST -> SVHN code's ``D1`` (``in_ch`` 1) / ``D2`` (3): one score per 32x32 image."""
    return DCGANDiscriminator(in_ch, conv_dim, 3, norm)
