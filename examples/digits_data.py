"""What the digits examples share: scikit-learn's bundled handwritten digits (1797 8x8
images, no download) split into train and test sets, minibatches, and a loss/accuracy plot.
Needs the `examples` extra: pip install -e ".[examples]"."""
from __future__ import annotations

import numpy as np


def load_digits(test_fraction=0.2, seed=0):
    """(x_train, y_train, x_test, y_test): images scaled to [0, 1] as float32 (N, 1, 8, 8),
    labels int32; a fixed shuffled split so runs are comparable."""
    from sklearn.datasets import load_digits as sklearn_digits
    data = sklearn_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    y = data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def batches(x, y, batch_size, rng):
    """Shuffled full minibatches of one epoch (the last partial batch is dropped, so every
    step has the same shapes and jit compiles one Program)."""
    order = rng.permutation(len(y))
    for start in range(0, len(y) - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]


def plot_history(path, history, title):
    """history: {"loss": [...], "test accuracy": [...]} per epoch -> a PNG with two panels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(history), figsize=(5 * len(history), 3.5))
    for ax, (name, values) in zip(np.atleast_1d(axes), history.items()):
        ax.plot(np.arange(1, len(values) + 1), values)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
