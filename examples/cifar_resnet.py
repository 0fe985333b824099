"""A ResNet-18 with the CIFAR stem (fjit.models, torchvision's layout) trained on generated
32x32 colour images of ten shape classes (shapes_data.py: nothing to download), as one
would train it on CIFAR-10: SGD with momentum and weight decay, a cosine learning-rate
schedule, BatchNorm statistics threaded through the jitted step, random flips.

    pip install -e ".[examples]" && python examples/cifar_resnet.py

Prints the test accuracy, saves the loss and accuracy curves to cifar_resnet_history.png
and the weights as a PyTorch state_dict (cifar_resnet.npz, loadable into torchvision's
layout with torch.from_numpy) -- the way back to PyTorch.
"""
import argparse
import time

import numpy as np
from tqdm import tqdm

import fjit
import fjit.numpy as jnp
from fjit import models, nn, optim
from digits_data import plot_history
from shapes_data import make_shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--depth", type=int, choices=(18, 34), default=18)
    parser.add_argument("--plot", default="cifar_resnet_history.png")
    parser.add_argument("--weights", default="cifar_resnet.npz")
    args = parser.parse_args()

    x_train, y_train = make_shapes(args.train_size, seed=0)
    x_test, y_test = make_shapes(512, seed=1)
    model = getattr(models, f"resnet{args.depth}")(num_classes=10, stem="cifar")
    params, bn_state = model.init(fjit.random.PRNGKey(0)), model.init_state()
    steps_per_epoch = args.train_size // args.batch_size
    schedule = optim.cosine_decay_schedule(0.05, args.epochs * steps_per_epoch)
    optimizer = optim.chain(optim.add_decayed_weights(5e-4),
                            optim.sgd(schedule, momentum=0.9))
    opt_state = optimizer.init(params)

    def loss_fn(params, bn_state, x, y):
        logits, bn_state = model.apply(params, x, state=bn_state, train=True)
        return nn.softmax_cross_entropy_with_integer_labels(logits, y).mean(), bn_state

    @fjit.jit
    def train_step(params, opt_state, bn_state, x, y):
        (loss, bn_state), grads = fjit.value_and_grad(loss_fn, has_aux=True)(
            params, bn_state, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, bn_state, loss

    @fjit.jit
    def predict(params, bn_state, x):
        return jnp.argmax(model.apply(params, x, state=bn_state)[0], axis=-1)

    def accuracy():
        hits = 0
        for start in range(0, len(y_test), 128):
            hits += int((np.asarray(predict(params, bn_state, x_test[start:start + 128]))
                         == y_test[start:start + 128]).sum())
        return hits / len(y_test)

    rng = np.random.default_rng(0)
    history = {"loss": [], "test accuracy": []}
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order, total = rng.permutation(args.train_size), 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{args.epochs}")
        for k in bar:
            idx = order[k * args.batch_size:(k + 1) * args.batch_size]
            x = x_train[idx]
            flip = rng.random(len(idx)) < 0.5          # random horizontal flips
            x = np.where(flip[:, None, None, None], x[..., ::-1], x)
            params, opt_state, bn_state, loss = train_step(params, opt_state, bn_state, x,
                                                           y_train[idx])
            total += float(loss)
            bar.set_postfix(loss=f"{total / (k + 1):.3f}")
        history["loss"].append(total / steps_per_epoch)
        history["test accuracy"].append(accuracy())
        print(f"epoch {epoch}: loss {history['loss'][-1]:.3f}, "
              f"test accuracy {history['test accuracy'][-1]:.3f}")
    elapsed = time.perf_counter() - start
    print(f"trained in {elapsed:.1f} s; test accuracy {history['test accuracy'][-1]:.3f}")
    plot_history(args.plot, history, f"ResNet-{args.depth} (CIFAR stem) on generated shapes")
    np.savez(args.weights, **nn.to_torch_state_dict(model, params, bn_state))
    print(f"saved {args.plot} and {args.weights} (PyTorch's names and layouts)")


if __name__ == "__main__":
    main()
