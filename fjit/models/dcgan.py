"""The DCGAN generator and discriminator (Radford et al. 2016) in the layout of PyTorch's
DCGAN example (`main.0.weight`, ...), with its initialization: convolutions N(0, 0.02),
BatchNorm weights N(1, 0.02) and biases 0.  64x64 images."""
from __future__ import annotations

from .. import nn
from .. import numpy as jnp
from ..nn import initializers as inits

_CONV_INIT = inits.normal(0.02)


def _bn(c):
    return nn.BatchNorm2d(c, weight_init=lambda key, shape, dtype: 1.0 + inits.normal(0.02)(
        key, shape, dtype), bias_init=inits.zeros)


def _up(cin, cout, stride=2, padding=1):
    return nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False,
                              weight_init=_CONV_INIT)


def _down(cin, cout, stride=2, padding=1):
    return nn.Conv2d(cin, cout, 4, stride, padding, bias=False, weight_init=_CONV_INIT)


class DCGANGenerator(nn.Module):
    """z (N, nz, 1, 1) -> images (N, nc, 64, 64) in [-1, 1]."""

    def __init__(self, nz=100, ngf=64, nc=3):
        self.nz = nz
        self.main = nn.Sequential(
            _up(nz, ngf * 8, 1, 0), _bn(ngf * 8), nn.ReLU(True),
            _up(ngf * 8, ngf * 4), _bn(ngf * 4), nn.ReLU(True),
            _up(ngf * 4, ngf * 2), _bn(ngf * 2), nn.ReLU(True),
            _up(ngf * 2, ngf), _bn(ngf), nn.ReLU(True),
            _up(ngf, nc), nn.Tanh())

    def forward(self, z):
        z = jnp.asarray(z)
        if z.ndim == 2:   # (N, nz) latents as well as PyTorch's (N, nz, 1, 1)
            z = z.reshape(z.shape + (1, 1))
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """images (N, nc, 64, 64) -> one score per image, shape (N,).  `sigmoid=True` is the
    original GAN's probability; an LSGAN or a WGAN keeps the raw score (the default)."""

    def __init__(self, ndf=64, nc=3, sigmoid=False):
        layers = [_down(nc, ndf), nn.LeakyReLU(0.2, True),
                  _down(ndf, ndf * 2), _bn(ndf * 2), nn.LeakyReLU(0.2, True),
                  _down(ndf * 2, ndf * 4), _bn(ndf * 4), nn.LeakyReLU(0.2, True),
                  _down(ndf * 4, ndf * 8), _bn(ndf * 8), nn.LeakyReLU(0.2, True),
                  _down(ndf * 8, 1, 1, 0)]
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x).reshape(-1)
