"""Per-example gradients with vmap(grad): DP-SGD-style training (Abadi et al. 2016) of a
softmax classifier on scikit-learn's handwritten digits.

    pip install -e ".[examples]" && python examples/per_example_gradients.py

`vmap(grad(loss))` gives one gradient per example in a single Program; each is clipped to
norm <= CLIP, the clipped gradients are averaged and Gaussian noise (std NOISE * CLIP /
batch) is added before the SGD step -- what differentially private SGD does.  Prints the test
accuracy of the private model next to a plain-SGD one and saves the curves to
per_example_gradients.png.
"""
import argparse
import time

import numpy as np
from tqdm import tqdm

import fjit
import fjit.numpy as jnp
from fjit import nn, optim, random
from digits_data import batches, load_digits, plot_history

CLIP, NOISE = 1.0, 0.5
model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def loss_fn(params, x, y):
    """The loss of one example (x: (1, 8, 8), y: a scalar label)."""
    logits = model.apply(params, x[None])
    return nn.softmax_cross_entropy_with_integer_labels(logits, y[None])[0]


def private_gradient(params, x, y, key):
    per_example = fjit.vmap(fjit.grad(loss_fn), in_axes=(None, 0, 0))(params, x, y)
    leaves = fjit.tree_util.tree_leaves(per_example)
    norms = jnp.sqrt(sum(jnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1) for g in leaves))
    scale = jnp.minimum(1.0, CLIP / (norms + 1e-12))                      # (batch,)
    batch = x.shape[0]
    keys = random.split(key, len(leaves))
    treedef = fjit.tree_util.tree_structure(per_example)
    noisy = [jnp.tensordot(scale, g, axes=1) / batch
             + NOISE * CLIP / batch * random.normal(k, g.shape[1:])
             for g, k in zip(leaves, keys)]
    return fjit.tree_util.tree_unflatten(treedef, noisy), norms


optimizer = optim.sgd(0.5)


@fjit.jit
def private_step(params, opt_state, x, y, key):
    grads, norms = private_gradient(params, x, y, key)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optim.apply_updates(params, updates), opt_state, norms.mean()


@fjit.jit
def plain_step(params, opt_state, x, y):
    grads = fjit.grad(lambda p: fjit.vmap(loss_fn, in_axes=(None, 0, 0))(p, x, y).mean())(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optim.apply_updates(params, updates), opt_state


@fjit.jit
def accuracy(params, x, y):
    return (jnp.argmax(model.apply(params, x), axis=-1) == y).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--plot", default="per_example_gradients.png")
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = load_digits()
    key = random.PRNGKey(0)
    private = plain = model.init(random.PRNGKey(1))
    private_state, plain_state = optimizer.init(private), optimizer.init(plain)
    rng = np.random.default_rng(0)
    history = {"mean per-example gradient norm": [], "test accuracy (private)": [],
               "test accuracy (plain SGD)": []}
    start = time.perf_counter()
    for _ in tqdm(range(args.epochs), desc="epochs"):
        norms = []
        for xb, yb in batches(x_train, y_train, args.batch_size, rng):
            key, sub = random.split(key)
            private, private_state, norm = private_step(private, private_state, xb, yb, sub)
            plain, plain_state = plain_step(plain, plain_state, xb, yb)
            norms.append(float(norm))
        history["mean per-example gradient norm"].append(float(np.mean(norms)))
        history["test accuracy (private)"].append(float(accuracy(private, x_test, y_test)))
        history["test accuracy (plain SGD)"].append(float(accuracy(plain, x_test, y_test)))
    elapsed = time.perf_counter() - start
    print(f"after {args.epochs} epochs ({elapsed:.1f} s): test accuracy "
          f"{history['test accuracy (private)'][-1]:.4f} with clipped, noised per-example "
          f"gradients (clip {CLIP}, noise {NOISE}), "
          f"{history['test accuracy (plain SGD)'][-1]:.4f} with plain SGD")
    plot_history(args.plot, history, "DP-SGD-style training with vmap(grad) (fjit)")
    print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
