"""A LeNet-style CNN on scikit-learn's handwritten digits with fjit.nn and fjit.optim.

    pip install -e ".[examples]" && python examples/digits_cnn.py

Two 3x3 convolution + ReLU + 2x2 max-pool stages (8x8 -> 4x4 -> 2x2), then two dense layers;
Adam with a cosine learning-rate decay, 40 epochs.  Every convolution and its gradients are
reindex + contraction meta-ops that the compiler routes to GEMM.  Prints the test accuracy
(>= 98%) and saves the curves to digits_cnn.png.
"""
import argparse
import time

import numpy as np
from tqdm import tqdm

import fjit
import fjit.numpy as jnp
from fjit import nn, optim, random
from digits_data import batches, load_digits, plot_history

model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.relu, nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.relu, nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.relu, nn.Linear(128, 10))


def loss_fn(params, x, y):
    return nn.softmax_cross_entropy_with_integer_labels(model.apply(params, x), y).mean()


@fjit.jit
def accuracy(params, x, y):
    return (jnp.argmax(model.apply(params, x), axis=-1) == y).mean()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--plot", default="digits_cnn.png")
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = load_digits()
    steps = args.epochs * (len(y_train) // args.batch_size)
    optimizer = optim.adam(optim.cosine_decay_schedule(3e-3, steps))

    @fjit.jit
    def train_step(params, opt_state, x, y):
        loss, grads = fjit.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

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
    plot_history(args.plot, history, "LeNet-style CNN on digits (fjit)")
    print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
