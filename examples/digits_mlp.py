"""An MLP classifier on scikit-learn's handwritten digits with fjit.nn and fjit.optim.

    pip install -e ".[examples]" && python examples/digits_mlp.py

Trains a 64-256-128-10 ReLU network with Adam for 30 epochs (one jitted step: forward,
backward and the optimizer update in one native call), prints the test accuracy (>= 97%)
and saves the loss/accuracy curves to digits_mlp.png.
"""
import argparse
import time

import numpy as np
from tqdm import tqdm

import fjit
import fjit.numpy as jnp
from fjit import nn, optim, random
from digits_data import batches, load_digits, plot_history

model = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.relu, nn.Linear(256, 128), nn.relu,
                      nn.Linear(128, 10))
optimizer = optim.adam(1e-3)


def loss_fn(params, x, y):
    logits = model.apply(params, x)
    return nn.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@fjit.jit
def train_step(params, opt_state, x, y):
    loss, grads = fjit.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optim.apply_updates(params, updates), opt_state, loss


@fjit.jit
def accuracy(params, x, y):
    return (jnp.argmax(model.apply(params, x), axis=-1) == y).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--plot", default="digits_mlp.png")
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = load_digits()
    params = model.init(random.PRNGKey(0))
    opt_state = optimizer.init(params)
    rng = np.random.default_rng(0)
    history = {"training loss": [], "test accuracy": []}
    start = time.perf_counter()
    for _ in tqdm(range(args.epochs), desc="epochs"):
        losses = []
        for xb, yb in batches(x_train, y_train, args.batch_size, rng):
            params, opt_state, loss = train_step(params, opt_state, xb, yb)
            losses.append(loss)
        history["training loss"].append(float(np.mean([float(l) for l in losses])))
        history["test accuracy"].append(float(accuracy(params, x_test, y_test)))
    elapsed = time.perf_counter() - start
    print(f"test accuracy {history['test accuracy'][-1]:.4f} after {args.epochs} epochs "
          f"({elapsed:.1f} s)")
    plot_history(args.plot, history, "MLP on digits (fjit)")
    print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
