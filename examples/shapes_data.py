"""Generated colour images for the ResNet and DCGAN examples (nothing downloaded): ten
classes of shapes -- disc, square, triangle, ring, cross, horizontal, vertical and diagonal
stripes, checkerboard, dots -- each in a random colour, size and position over a noisy
background, as (N, 3, size, size) float32 in [-1, 1] with int32 labels."""
from __future__ import annotations

import numpy as np

CLASSES = ["disc", "square", "triangle", "ring", "cross", "h-stripes", "v-stripes",
           "diagonal", "checker", "dots"]


def _mask(kind, size, rng):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = rng.uniform(0.2, 0.35) * size
    cy, cx = rng.uniform(r, size - r, 2)
    dy, dx = yy - cy, xx - cx
    period = rng.uniform(0.12, 0.2) * size
    phase = rng.uniform(0, period)
    if kind == "disc":
        return dy ** 2 + dx ** 2 <= r ** 2
    if kind == "square":
        return (abs(dy) <= r * 0.85) & (abs(dx) <= r * 0.85)
    if kind == "triangle":
        return (dy <= r * 0.8) & (dy >= -r) & (abs(dx) <= (dy + r) * 0.6)
    if kind == "ring":
        d = np.sqrt(dy ** 2 + dx ** 2)
        return (d <= r) & (d >= r * 0.6)
    if kind == "cross":
        return ((abs(dy) <= r * 0.25) | (abs(dx) <= r * 0.25)) & (abs(dy) <= r) & (abs(dx) <= r)
    if kind == "h-stripes":
        return (yy + phase) % period < period / 2
    if kind == "v-stripes":
        return (xx + phase) % period < period / 2
    if kind == "diagonal":
        return (xx + yy + phase) % (period * 1.4) < period * 0.7
    if kind == "checker":
        return ((yy + phase) // period + (xx + phase) // period) % 2 == 0
    return ((yy + phase) % period < period * 0.4) & ((xx + phase) % period < period * 0.4)


def make_shapes(n, size=32, seed=0, classes=None):
    """(images, labels): n images of the given classes (all ten by default), balanced."""
    rng = np.random.default_rng(seed)
    classes = list(range(len(CLASSES))) if classes is None else list(classes)
    labels = np.asarray([classes[k % len(classes)] for k in range(n)], np.int32)
    rng.shuffle(labels)
    images = np.empty((n, 3, size, size), np.float32)
    for k, label in enumerate(labels):
        background = rng.uniform(-1, 0.2, 3).astype(np.float32)
        colour = rng.uniform(-0.2, 1, 3).astype(np.float32)
        mask = _mask(CLASSES[label], size, rng)
        image = np.where(mask, colour[:, None, None], background[:, None, None])
        images[k] = np.clip(image + rng.normal(0, 0.1, image.shape), -1, 1)
    return images, labels
