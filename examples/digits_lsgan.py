"""A least-squares GAN (LSGAN, Mao et al. 2017; Jittor's headline model) on scikit-learn's
handwritten digits: a generator and a discriminator, each with its own Adam optimizer.

    pip install -e ".[examples]" && python examples/digits_lsgan.py

The discriminator is trained to output 1 on real digits and 0 on generated ones, the
generator to make it output 1, both with squared-error losses.  One jitted step updates both
networks.  Saves a grid of generated digits to digits_lsgan_samples.png and the two losses to
digits_lsgan_losses.png.  GAN training depends on the seed: with --seed 0 this generator
collapses onto a few digit shapes; the default seed gives all ten.
"""
import argparse
import time

import numpy as np
from tqdm import tqdm

import fjit
import fjit.numpy as jnp
from fjit import nn, optim, random
from digits_data import load_digits, plot_history

LATENT = 32
generator = nn.Sequential(nn.Linear(LATENT, 128), nn.LayerNorm(128), nn.relu,
                          nn.Linear(128, 256), nn.LayerNorm(256), nn.relu,
                          nn.Linear(256, 64), nn.sigmoid)
discriminator = nn.Sequential(nn.Linear(64, 256), nn.leaky_relu, nn.Linear(256, 128),
                              nn.leaky_relu, nn.Linear(128, 1))
g_optimizer = optim.adam(1e-3, b1=0.5)
d_optimizer = optim.adam(1e-3, b1=0.5)


def d_loss(d_params, g_params, real, z):
    fake = generator.apply(g_params, z)
    return 0.5 * (jnp.mean((discriminator.apply(d_params, real) - 1.0) ** 2)
                  + jnp.mean(discriminator.apply(d_params, fake) ** 2))


def g_loss(g_params, d_params, z):
    fake = generator.apply(g_params, z)
    return 0.5 * jnp.mean((discriminator.apply(d_params, fake) - 1.0) ** 2)


@fjit.jit
def train_step(g_params, d_params, g_state, d_state, real, key):
    key, kd, kg = random.split(key, 3)   # inside the step: no eager work per step
    z = random.normal(kd, (real.shape[0], LATENT))
    dl, d_grads = fjit.value_and_grad(d_loss)(d_params, g_params, real, z)
    updates, d_state = d_optimizer.update(d_grads, d_state, d_params)
    d_params = optim.apply_updates(d_params, updates)
    z = random.normal(kg, (real.shape[0], LATENT))
    gl, g_grads = fjit.value_and_grad(g_loss)(g_params, d_params, z)
    updates, g_state = g_optimizer.update(g_grads, g_state, g_params)
    return optim.apply_updates(g_params, updates), d_params, g_state, d_state, key, gl, dl


def save_grid(path, images, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = int(np.sqrt(len(images)))
    cells = np.pad(images[:n * n].reshape(n, n, 8, 8), ((0, 0), (0, 0), (1, 1), (1, 1)))
    grid = cells.transpose(0, 2, 1, 3).reshape(n * 10, n * 10)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", default="digits_lsgan_samples.png")
    parser.add_argument("--plot", default="digits_lsgan_losses.png")
    args = parser.parse_args()

    x_train, _, _, _ = load_digits(test_fraction=0.0)
    real_images = x_train.reshape(len(x_train), 64)
    key = random.PRNGKey(args.seed)
    key, kg, kd = random.split(key, 3)
    g_params, d_params = generator.init(kg), discriminator.init(kd)
    g_state, d_state = g_optimizer.init(g_params), d_optimizer.init(d_params)
    rng = np.random.default_rng(0)
    history = {"generator loss": [], "discriminator loss": []}
    per_point = 100
    g_sum = d_sum = 0.0
    start = time.perf_counter()
    for step in tqdm(range(1, args.steps + 1), desc="steps"):
        batch = real_images[rng.integers(0, len(real_images), args.batch_size)]
        g_params, d_params, g_state, d_state, key, gl, dl = train_step(
            g_params, d_params, g_state, d_state, batch, key)
        g_sum, d_sum = g_sum + float(gl), d_sum + float(dl)
        if step % per_point == 0:
            history["generator loss"].append(g_sum / per_point)
            history["discriminator loss"].append(d_sum / per_point)
            g_sum = d_sum = 0.0
    elapsed = time.perf_counter() - start
    samples = np.asarray(generator.apply(g_params, random.normal(random.PRNGKey(1),
                                                                 (64, LATENT))))
    print(f"{args.steps} steps in {elapsed:.1f} s; last losses: generator "
          f"{history['generator loss'][-1]:.3f}, discriminator "
          f"{history['discriminator loss'][-1]:.3f}")
    save_grid(args.samples, samples, f"LSGAN samples after {args.steps} steps (fjit)")
    plot_history(args.plot, history, f"LSGAN losses (mean of each {per_point} steps)")
    print(f"saved {args.samples} and {args.plot}")


if __name__ == "__main__":
    main()
