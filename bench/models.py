"""Real models for the compile-time and step-time benchmarks (issue 15), written with fjit.nn:
a CIFAR ResNet-18, torchvision's ResNet-50 (v1.5: the stride on the 3x3 convolution) and a
DCGAN-64 generator and discriminator trained as an LSGAN.

Each `*_step(batch)` returns (step, state): `step(state) -> state` is one jitted training
iteration (forward, backward, optimizer, BatchNorm statistics) and `state` holds parameters,
optimizer state, BatchNorm state and the batch, so calling it again and again trains on one
batch.  Inputs are seeded; nothing is downloaded.  A later issue adds a model zoo.
"""
from __future__ import annotations

import numpy as np

import fjit
import fjit.numpy as jnp
from fjit import nn, optim


class BasicBlock(nn.Module):
    """ResNet-18/34's block: two 3x3 convolutions, a projection shortcut when the shape changes."""
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        self.body = nn.Sequential(
            nn.Conv2d(cin, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes), nn.relu,
            nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes))
        self.shortcut = None
        if stride != 1 or cin != planes * self.expansion:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, planes * self.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * self.expansion))

    def forward(self, x):
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return nn.relu(self.body(x) + shortcut)


class Bottleneck(BasicBlock):
    """ResNet-50's block (torchvision v1.5): 1x1 reduce, 3x3 with the stride, 1x1 expand."""
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        out = planes * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.relu,
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes),
            nn.relu,
            nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out))
        self.shortcut = None
        if stride != 1 or cin != out:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False),
                                          nn.BatchNorm2d(out))


def _stages(block, blocks_per_stage, cin):
    layers = []
    for stage, count in enumerate(blocks_per_stage):
        planes = 64 * 2 ** stage
        for i in range(count):
            layers.append(block(cin, planes, 2 if (i == 0 and stage > 0) else 1))
            cin = planes * block.expansion
    return layers, cin


def resnet18_cifar(classes=10):
    """The CIFAR variant: a 3x3 stem, no max-pool, 32x32 inputs."""
    layers, cin = _stages(BasicBlock, [2, 2, 2, 2], 64)
    return nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.relu,
                         *layers, nn.GlobalAvgPool(), nn.Linear(cin, classes))


def resnet50(classes=1000):
    """torchvision's ResNet-50 (v1.5)."""
    layers, cin = _stages(Bottleneck, [3, 4, 6, 3], 64)
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.relu,
                         nn.MaxPool2d(3, 2, 1), *layers, nn.GlobalAvgPool(),
                         nn.Linear(cin, classes))


def _classifier_step(model, batch, size, classes, learning_rate=0.1):
    """SGD with momentum 0.9 on softmax cross-entropy; BatchNorm in training mode."""
    params = model.init(fjit.random.PRNGKey(0))
    bn_state = model.init_state()
    optimizer = optim.sgd(learning_rate, momentum=0.9)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, classes, batch).astype(np.int32))

    def loss(params, bn_state, x, y):
        logits, bn_state = model.apply(params, x, state=bn_state, train=True)
        return nn.softmax_cross_entropy_with_integer_labels(logits, y).mean(), bn_state

    @fjit.jit
    def step(state):
        params, opt_state, bn_state, x, y = state
        (value, bn_state), grads = fjit.value_and_grad(loss, has_aux=True)(
            params, bn_state, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, bn_state, x, y

    return step, (params, optimizer.init(params), bn_state, x, y)


def resnet18_step(batch=8):
    return _classifier_step(resnet18_cifar(), batch, 32, 10)


def resnet50_step(batch=8):
    return _classifier_step(resnet50(), batch, 64, 1000)


def dcgan_generator(nz=100, ngf=64):
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.relu,
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4),
        nn.relu,
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2),
        nn.relu,
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.relu,
        nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.tanh)


def _leaky(x):
    return nn.leaky_relu(x, 0.2)


def dcgan_discriminator(ndf=64):
    return nn.Sequential(
        nn.Conv2d(3, ndf, 4, 2, 1, bias=False), _leaky,
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), _leaky,
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), _leaky,
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), _leaky,
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))


def lsgan_step(batch=8, nz=100):
    """One LSGAN iteration: a discriminator step (real toward 1, fake toward 0), then a
    generator step (fake toward 1); Adam(2e-4, b1=0.5) for both, BatchNorm in training mode."""
    gen, disc = dcgan_generator(nz), dcgan_discriminator()
    g_params, d_params = gen.init(fjit.random.PRNGKey(1)), disc.init(fjit.random.PRNGKey(2))
    g_bn, d_bn = gen.init_state(), disc.init_state()
    g_opt, d_opt = optim.adam(2e-4, b1=0.5), optim.adam(2e-4, b1=0.5)
    rng = np.random.default_rng(0)
    real = jnp.asarray(rng.uniform(-1, 1, (batch, 3, 64, 64)).astype(np.float32))
    z = jnp.asarray(rng.standard_normal((batch, nz, 1, 1)).astype(np.float32))

    def d_loss(d_params, d_bn, fake, real):
        both = jnp.concatenate([real, fake])
        scores, d_bn = disc.apply(d_params, both, state=d_bn, train=True)
        n = real.shape[0]   # not the closed-over batch: the step serves any batch size
        real_scores, fake_scores = scores[:n], scores[n:]
        return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores ** 2).mean()), d_bn

    def g_loss(g_params, g_bn, d_params, d_bn, z):
        fake, g_bn = gen.apply(g_params, z, state=g_bn, train=True)
        scores, d_bn = disc.apply(d_params, fake, state=d_bn, train=True)
        return 0.5 * ((scores - 1) ** 2).mean(), (g_bn, d_bn)

    @fjit.jit
    def step(state):
        g_params, d_params, g_state, d_state, g_bn, d_bn, real, z = state
        fake, _ = gen.apply(g_params, z, state=g_bn, train=True)
        (_, d_bn), d_grads = fjit.value_and_grad(d_loss, has_aux=True)(
            d_params, d_bn, fjit.lax.stop_gradient(fake), real)
        updates, d_state = d_opt.update(d_grads, d_state, d_params)
        d_params = optim.apply_updates(d_params, updates)
        (_, (g_bn, d_bn)), g_grads = fjit.value_and_grad(g_loss, has_aux=True)(
            g_params, g_bn, d_params, d_bn, z)
        updates, g_state = g_opt.update(g_grads, g_state, g_params)
        g_params = optim.apply_updates(g_params, updates)
        return g_params, d_params, g_state, d_state, g_bn, d_bn, real, z

    return step, (g_params, d_params, g_opt.init(g_params), d_opt.init(d_params), g_bn, d_bn,
                  real, z)


MODELS = {"resnet18": resnet18_step, "resnet50": resnet50_step, "lsgan": lsgan_step}
