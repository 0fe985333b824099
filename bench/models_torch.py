"""bench/models.py's training steps in PyTorch eager (CPU), the baseline issue 18 measures
fjit against: the same architectures (tests/torch_reference_models.py: torchvision's ResNet
layout, PyTorch's DCGAN example), the same batch, optimizer and loss.  Each builder returns
a step that runs one training iteration in place and returns nothing.

    import models_torch; step = models_torch.MODELS["resnet18"](32); step()
"""
from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                "tests"))
import torch_reference_models as reference  # noqa: E402


def _classifier_step(model, batch, size, classes, learning_rate=0.1):
    """SGD with momentum 0.9 on softmax cross-entropy; BatchNorm in training mode."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=generator)
    y = torch.randint(0, classes, (batch,), generator=generator)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
    return step


def resnet18_step(batch=8):
    return _classifier_step(reference.resnet(18, 10, stem="cifar"), batch, 32, 10)


def resnet50_step(batch=8):
    return _classifier_step(reference.resnet(50, 1000), batch, 64, 1000)


def lsgan_step(batch=8, nz=100):
    """One discriminator step (real toward 1, fake toward 0), then one generator step (fake
    toward 1), Adam(2e-4, betas=(0.5, 0.999)), as bench/models.py's lsgan_step."""
    gen, disc = reference.DCGANGenerator(nz), reference.DCGANDiscriminator()
    gen.train(), disc.train()
    g_opt = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(batch, 3, 64, 64, generator=generator) * 2 - 1
    z = torch.randn(batch, nz, 1, 1, generator=generator)

    def step():
        fake = gen(z)
        d_opt.zero_grad(set_to_none=True)
        scores = disc(torch.cat([real, fake.detach()]))
        d_loss = 0.5 * (((scores[:batch] - 1) ** 2).mean() + (scores[batch:] ** 2).mean())
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        g_loss = 0.5 * ((disc(gen(z)) - 1) ** 2).mean()
        g_loss.backward()
        g_opt.step()
    return step


MODELS = {"resnet18": resnet18_step, "resnet50": resnet50_step, "lsgan": lsgan_step}
