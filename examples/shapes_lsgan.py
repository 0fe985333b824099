"""A DCGAN generator and discriminator (fjit.models, the layout of PyTorch's DCGAN example)
trained as a least-squares GAN (LSGAN, Mao et al. 2017; Jittor's headline GAN) on generated
64x64 colour shapes (shapes_data.py: nothing to download).

    pip install -e ".[examples]" && python examples/shapes_lsgan.py

One jitted step trains the discriminator (real toward 1, generated toward 0) and then the
generator (generated toward 1), Adam(b1=0.5) for both, BatchNorm statistics threaded
through.  The defaults (narrower networks than DCGAN's 64, a higher learning rate than its
2e-4) show blurred blobs forming where the shapes go in about 2.5 minutes on 2 CPU cores;
a GAN needs thousands of steps for sharp images.  Saves a grid of generated images to
shapes_lsgan_samples.png and the two losses to shapes_lsgan_losses.png.
"""
import argparse
import time

import numpy as np
from tqdm import tqdm

import fjit
from fjit import models, optim, random
from digits_data import plot_history
from shapes_data import make_shapes


def save_grid(path, images, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = int(np.sqrt(len(images)))
    size = images.shape[-1]
    cells = np.pad((images[:n * n] + 1) / 2, ((0, 0), (0, 0), (1, 1), (1, 1)))
    grid = cells.reshape(n, n, 3, size + 2, size + 2).transpose(0, 3, 1, 4, 2)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(np.clip(grid.reshape(n * (size + 2), n * (size + 2), 3), 0, 1))
    ax.set_axis_off()
    ax.set_title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=16, help="ngf = ndf (64 in DCGAN)")
    parser.add_argument("--nz", type=int, default=64)
    parser.add_argument("--samples", default="shapes_lsgan_samples.png")
    parser.add_argument("--plot", default="shapes_lsgan_losses.png")
    args = parser.parse_args()

    real_images, _ = make_shapes(2048, size=64, seed=0, classes=[0, 1])  # discs and squares
    gen = models.DCGANGenerator(nz=args.nz, ngf=args.width)
    disc = models.DCGANDiscriminator(ndf=args.width)
    g_opt, d_opt = optim.adam(args.lr, b1=0.5), optim.adam(args.lr, b1=0.5)

    def d_loss(d_params, d_bn, real, fake):
        # real and generated batches apart, as PyTorch's DCGAN example does: BatchNorm
        # statistics of a mixed batch would let the discriminator tell them apart by them
        real_scores, d_bn = disc.apply(d_params, real, state=d_bn, train=True)
        fake_scores, d_bn = disc.apply(d_params, fake, state=d_bn, train=True)
        return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores ** 2).mean()), d_bn

    def g_loss(g_params, g_bn, d_params, d_bn, z):
        fake, g_bn = gen.apply(g_params, z, state=g_bn, train=True)
        scores, d_bn = disc.apply(d_params, fake, state=d_bn, train=True)
        return 0.5 * ((scores - 1) ** 2).mean(), (g_bn, d_bn)

    @fjit.jit
    def train_step(nets, opts, real, key):
        (g_params, g_bn), (d_params, d_bn) = nets
        g_state, d_state = opts
        kd, kg = random.split(key)
        fake, _ = gen.apply(g_params, random.normal(kd, (real.shape[0], args.nz)),
                            state=g_bn, train=True)
        (dl, d_bn), grads = fjit.value_and_grad(d_loss, has_aux=True)(
            d_params, d_bn, real, fjit.lax.stop_gradient(fake))
        updates, d_state = d_opt.update(grads, d_state, d_params)
        d_params = optim.apply_updates(d_params, updates)
        z = random.normal(kg, (real.shape[0], args.nz))
        (gl, (g_bn, d_bn)), grads = fjit.value_and_grad(g_loss, has_aux=True)(
            g_params, g_bn, d_params, d_bn, z)
        updates, g_state = g_opt.update(grads, g_state, g_params)
        g_params = optim.apply_updates(g_params, updates)
        return ((g_params, g_bn), (d_params, d_bn)), (g_state, d_state), gl, dl

    kg, kd = random.split(random.PRNGKey(0))
    g_params, d_params = gen.init(kg), disc.init(kd)
    nets = ((g_params, gen.init_state()), (d_params, disc.init_state()))
    opts = (g_opt.init(g_params), d_opt.init(d_params))
    rng, key = np.random.default_rng(0), random.PRNGKey(1)
    history = {"generator loss": [], "discriminator loss": []}
    per_point = max(1, args.steps // 30)
    sums = [0.0, 0.0]
    start = time.perf_counter()
    for step in tqdm(range(1, args.steps + 1), desc="steps"):
        key, sub = random.split(key)
        batch = real_images[rng.integers(0, len(real_images), args.batch_size)]
        nets, opts, gl, dl = train_step(nets, opts, batch, sub)
        sums = [sums[0] + float(gl), sums[1] + float(dl)]
        if step % per_point == 0:
            history["generator loss"].append(sums[0] / per_point)
            history["discriminator loss"].append(sums[1] / per_point)
            sums = [0.0, 0.0]
    elapsed = time.perf_counter() - start
    (g_params, g_bn), _ = nets
    # sampled in training mode (batch statistics), as PyTorch's DCGAN example samples
    samples = np.asarray(gen.apply(g_params, random.normal(random.PRNGKey(2), (36, args.nz)),
                                   state=g_bn, train=True)[0])
    print(f"{args.steps} steps in {elapsed:.1f} s; last losses: generator "
          f"{history['generator loss'][-1]:.3f}, discriminator "
          f"{history['discriminator loss'][-1]:.3f}")
    save_grid(args.samples, samples, f"LSGAN (DCGAN models) after {args.steps} steps (fjit)")
    plot_history(args.plot, history, f"LSGAN losses (mean of each {per_point} steps)")
    print(f"saved {args.samples} and {args.plot}")


if __name__ == "__main__":
    main()
