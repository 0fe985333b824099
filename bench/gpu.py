"""GPU benchmarks for fjit's CUDA backend against PyTorch (eager and torch.compile) and JAX.

    python bench/gpu.py                                  # G1..G6, 3 rounds, on the first GPU
    python bench/gpu.py --workloads G1,G4 --rounds 1 --timeout 60 --budget 280
    python bench/gpu.py --small --rounds 1 --timeout 300 # tiny sizes; works without a GPU
    python bench/gpu.py --worker fjit G4 [--small]       # one measurement, one JSON line

Workloads (float32; inputs and initial weights are seeded NumPy arrays shared by every
framework; matmuls and convolutions at full float32 precision everywhere, no TF32):
    G1  gelu(x*a + b), tanh form, 64M elements (a, b Python floats)   (+ GB/s: 256 MB in, 256 out)
    G2  row softmax of an 8192x8192 matrix (x - row max, exp, / row sum)      (+ GB/s)
    G3  4096x4096 @ 4096x4096 matmul
    G4  one Adam step (lr 1e-3) of a 784-512-512-10 ReLU MLP, softmax cross-entropy, batch 128
    G5  one SGD step (lr 0.01) of LeNet-5, batch 64 of 1x28x28 (NCHW): conv 6@5x5 pad 2, relu,
        max-pool 2, conv 16@5x5, relu, max-pool 2, dense 400-120-84-10 (ReLU), cross-entropy
    G6  100 SGD steps (lr 0.01) of G4's MLP over 100 resident batches of 128: one jitted
        lax.scan in fjit and JAX; PyTorch loops over its (compiled) step in Python
Frameworks: fjit (FJIT_PLATFORM=cuda, arrays on fjit.devices("cuda")[0]), torch (eager on
cuda), torch.compile (the same step compiled, its warm-up calls untimed), jax (jax.jit on the
default GPU).  Parameters, optimizer state and data stay on the device.

Each measurement is its own process (`--worker`), frameworks interleaved within each round.
A worker warms up (the first call compiles), then times batches of calls of about 0.5 s, each
ending with a device synchronisation, and reports the median of up to 3 batches (fewer when
its time runs short), plus a "check": the output's sum of squares (G1-G3), the loss after one
update (G4, G5) or the last step's loss (G6), read back after timing.

Prints a markdown table of the median seconds per call over rounds for each workload and
framework, with `other/fjit` ratios (> 1: fjit is faster), G1 and G2 as GB/s, the GPU's name
and the date, and flags checks that differ by more than --rtol from JAX's (else PyTorch's).
All raw results (stderr tails of failed workers included) go to --out as JSON.  A worker that
fails or passes --timeout is recorded as such and the run goes on; a pair that timed out is
not retried in later rounds, and with --budget nothing new starts once the run has used it.
Frameworks that cannot be imported are skipped with a note.

--small shrinks every workload (G1 1M elements, G2 512x512, G3 256^3, G4-G6 hidden 128 and
batch 32, G5 batch 8, G6 10 steps) so that it runs on a CPU-only machine: there PyTorch and JAX
run on the CPU and fjit on its emulated GPU (FJIT_CUDA_EMULATION=1).  Without --small and
without a GPU the runner says so and exits 0.
"""
from __future__ import annotations

import argparse
import faulthandler
import importlib.util
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FRAMEWORKS = ["fjit", "torch", "torch.compile", "jax"]
BATCH_SECONDS = 0.5     # the length of one timed batch of calls
BATCHES = 3             # the median is over this many batches (fewer when time runs short)

SIZES = {   # full size, then --small
    False: dict(elements=1 << 26, softmax=(8192, 8192), matmul=4096, mlp=[784, 512, 512, 10],
                batch=128, lenet_batch=64, steps=100),
    True: dict(elements=1 << 20, softmax=(512, 512), matmul=256, mlp=[784, 128, 128, 10],
               batch=32, lenet_batch=8, steps=10),
}
LABELS = {"G1": "gelu(x*a+b)", "G2": "row softmax", "G3": "matmul", "G4": "MLP Adam step",
          "G5": "LeNet-5 SGD step", "G6": "MLP SGD steps in one scan"}


# ------------------------------------------------------------------------------------------
# Shared inputs: seeded NumPy arrays, so every framework computes the same thing.

def normal(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def dense_params(rng, sizes):
    """He-normal weights (in, out) and zero biases for a stack of dense layers."""
    return [(rng.standard_normal((n_in, n_out)).astype(np.float32) *
             np.float32(np.sqrt(2.0 / n_in)), np.zeros(n_out, np.float32))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def classification_batch(rng, shape, batches=None):
    """Inputs of `shape` with integer labels in [0, 10); `batches` of them stacked."""
    lead = () if batches is None else (batches,)
    x = rng.standard_normal(lead + tuple(shape)).astype(np.float32)
    return x, rng.integers(0, 10, lead + shape[:1]).astype(np.int32)


def lenet_params(rng):
    """PyTorch's default uniform(+-1/sqrt(fan_in)) init; conv weights (out, in, kh, kw),
    dense ones (in, out)."""
    def layer(shape, fan_in):
        bound = 1 / np.sqrt(fan_in)
        outputs = shape[0] if len(shape) == 4 else shape[1]
        return (rng.uniform(-bound, bound, shape).astype(np.float32),
                rng.uniform(-bound, bound, outputs).astype(np.float32))
    return [layer((6, 1, 5, 5), 25), layer((16, 6, 5, 5), 150), layer((400, 120), 400),
            layer((120, 84), 120), layer((84, 10), 84)]


# ------------------------------------------------------------------------------------------
# Models, written once against a framework adapter `fw` (below): `@`, reshape and indexing
# are the same in every framework; what differs (relu, convolution, pooling) is a method.

def mlp_forward(fw, params, x):
    for w, b in params[:-1]:
        x = fw.relu(x @ w + b)
    return x @ params[-1][0] + params[-1][1]


def lenet_forward(fw, params, x):
    (c1, b1), (c2, b2) = params[:2]
    h = fw.max_pool2(fw.relu(fw.conv(x, c1, 2) + b1[None, :, None, None]))
    h = fw.max_pool2(fw.relu(fw.conv(h, c2, 0) + b2[None, :, None, None]))
    return mlp_forward(fw, params[2:], h.reshape(h.shape[0], -1))   # dense 400-120-84-10


def gelu(m, x, a, b):
    """gelu(x*a + b), tanh form; `m` is jax.numpy, fjit.numpy or torch."""
    v = x * a + b
    return 0.5 * v * (1 + m.tanh(0.7978845608 * (v + 0.044715 * v ** 3)))


# ------------------------------------------------------------------------------------------
# Framework adapters.  Only the measured framework is imported (one per process).

class Functional:
    """fjit or JAX: one code path with the library swapped, plus what differs between them
    (device, convolution and pooling, optimizers: JAX has no optax here)."""

    warmups = 1

    def __init__(self, name, on_gpu):
        self.name = name
        if name == "fjit":
            import fjit
            import fjit.numpy as jnp
            from fjit import nn
            self.lib, self.jnp, self.nn = fjit, jnp, nn
            self.device = fjit.devices("cuda")[0]
            self.device_name = f"{self.device!r} {self.device.device_kind}"
        else:
            import jax
            import jax.numpy as jnp
            jax.config.update("jax_default_matmul_precision", "highest")   # no TF32
            self.lib, self.jnp = jax, jnp
            self.device = jax.devices()[0]
            self.device_name = f"{self.device} {self.device.device_kind}"
            if on_gpu and self.device.platform != "gpu":
                raise RuntimeError(f"jax runs on {self.device.platform}, not the GPU "
                                   "(is jax[cuda12] installed?)")
        self.m = self.jnp
        self.jit = self.lib.jit

    def put(self, tree):
        return self.lib.device_put(tree, self.device)

    def wait(self, tree):
        self.lib.block_until_ready(tree)

    def to_numpy(self, x):
        return np.asarray(x)

    def after_first_call(self):
        if self.name == "fjit":   # tiered builds: time the optimised code, not the quick tier
            self.lib.block_until_compiled()

    # what the models need
    def relu(self, x):
        return self.jnp.maximum(x, 0.0)

    def conv(self, x, w, pad):
        if self.name == "fjit":
            return self.nn.conv(x, w, padding=pad)
        return self.lib.lax.conv_general_dilated(x, w, (1, 1), [(pad, pad), (pad, pad)])

    def max_pool2(self, x):
        if self.name == "fjit":
            return self.nn.max_pool(x, 2)
        return self.lib.lax.reduce_window(x, -self.jnp.inf, self.lib.lax.max, (1, 1, 2, 2),
                                          (1, 1, 2, 2), "VALID")

    def row_max(self, x):
        return self.jnp.max(x, axis=1, keepdims=True)

    def row_sum(self, x):
        return self.jnp.sum(x, axis=1, keepdims=True)

    def cross_entropy(self, logits, y):
        """Mean softmax cross-entropy with integer labels."""
        jnp = self.jnp
        top = jnp.max(logits, axis=1, keepdims=True)
        lse = jnp.log(jnp.sum(jnp.exp(logits - top), axis=1)) + top[:, 0]
        return jnp.mean(lse - jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0])

    def optimizer(self, name, lr):
        """An optax-style optimizer: fjit.optim's, or the same maths for JAX."""
        if self.name == "fjit":
            return getattr(self.lib.optim, name)(lr)
        return (JaxAdam if name == "adam" else JaxSgd)(lr, self.jnp, self.lib.tree_util.tree_map)

    def apply_updates(self, params, updates):
        return self.lib.tree_util.tree_map(lambda p, u: p + u, params, updates)

    # training
    def _loss_and_update(self, forward, opt):
        def loss_fn(p, x, y):
            return self.cross_entropy(forward(self, p, x), y)

        def update(p, s, x, y):
            loss, grads = self.lib.value_and_grad(loss_fn)(p, x, y)
            updates, s = opt.update(grads, s, p)
            return self.apply_updates(p, updates), s, loss
        return update

    def train_step(self, forward, params, x, y, optimizer, lr):
        """One jitted step; each call returns (loss, params, optimizer state)."""
        opt = self.optimizer(optimizer, lr)
        update = self._loss_and_update(forward, opt)

        @self.jit
        def step(p, s, x, y):
            p, s, loss = update(p, s, x, y)
            return loss, p, s
        return self._carry(step, opt, params, x, y)

    def train_loop(self, forward, params, xs, ys, optimizer, lr):
        """len(xs) steps in one jitted lax.scan; each call returns (losses, params, state)."""
        opt = self.optimizer(optimizer, lr)
        update = self._loss_and_update(forward, opt)

        def body(carry, batch):
            p, s, loss = update(*carry, *batch)
            return (p, s), loss

        @self.jit
        def loop(p, s, xs, ys):
            (p, s), losses = self.lib.lax.scan(body, (p, s), (xs, ys))
            return losses, p, s
        return self._carry(loop, opt, params, xs, ys)

    def _carry(self, step, opt, params, x, y):
        """A call that carries the parameters and optimizer state from call to call."""
        p = self.put(params)
        state = [p, self.put(opt.init(p))]
        x, y = self.put(x), self.put(y)

        def run():
            out = step(state[0], state[1], x, y)
            state[:] = out[1:]
            return out
        return run


class JaxSgd:
    """optax.sgd(lr) without momentum (optax is not installed alongside JAX here); built
    as JaxAdam is."""

    def __init__(self, lr, jnp, tree_map):
        self.lr, self.tree_map = lr, tree_map

    def init(self, params):
        return ()

    def update(self, grads, state, params=None):
        return self.tree_map(lambda g: -self.lr * g, grads), state


class JaxAdam:
    """optax.adam(lr)'s maths: bias-corrected moments, eps added outside the square root."""

    def __init__(self, lr, jnp, tree_map, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.jnp, self.tree_map = lr, jnp, tree_map
        self.b1, self.b2, self.eps = b1, b2, eps

    def init(self, params):
        zeros = self.tree_map(self.jnp.zeros_like, params)
        return self.jnp.zeros([], self.jnp.int32), zeros, zeros

    def update(self, grads, state, params=None):
        b1, b2, jnp, tree_map = self.b1, self.b2, self.jnp, self.tree_map
        count, mu, nu = state
        count = count + 1
        mu = tree_map(lambda m, g: b1 * m + (1 - b1) * g, mu, grads)
        nu = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, nu, grads)
        c1, c2 = 1 - b1 ** count, 1 - b2 ** count
        updates = tree_map(lambda m, v: -self.lr * (m / c1) / (jnp.sqrt(v / c2) + self.eps),
                           mu, nu)
        return updates, (count, mu, nu)


class Torch:
    """PyTorch, eager or with every step wrapped in torch.compile."""

    def __init__(self, name, on_gpu):
        import torch
        self.torch = self.m = torch
        self.compiled = name == "torch.compile"
        self.warmups = 3 if self.compiled else 1   # compiles and recompiles are untimed
        torch.backends.cuda.matmul.allow_tf32 = False   # full float32, as in the others
        torch.backends.cudnn.allow_tf32 = False
        if on_gpu and not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False (a CPU-only build?)")
        self.device = torch.device("cuda" if on_gpu else "cpu")
        self.device_name = torch.cuda.get_device_name() if on_gpu else "cpu"

    def jit(self, fn):
        return self.torch.compile(fn) if self.compiled else fn

    def put(self, array, grad=False):
        return self.torch.tensor(array, device=self.device, requires_grad=grad)

    def wait(self, _):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def to_numpy(self, x):
        return x.detach().cpu().numpy()

    def after_first_call(self):
        pass

    def relu(self, x):
        return self.torch.relu(x)

    def conv(self, x, w, pad):
        return self.torch.nn.functional.conv2d(x, w, padding=pad)

    def max_pool2(self, x):
        return self.torch.nn.functional.max_pool2d(x, 2)

    def row_max(self, x):
        return self.torch.amax(x, dim=1, keepdim=True)

    def row_sum(self, x):
        return self.torch.sum(x, dim=1, keepdim=True)

    def _step(self, forward, params, optimizer, lr):
        """(the step (x, y) -> loss, compiled or not) updating leaf tensors in place."""
        torch = self.torch
        p = [tuple(self.put(a, grad=True) for a in layer) for layer in params]
        leaves = [t for layer in p for t in layer]
        opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(leaves, lr=lr)

        def step(x, y):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(forward(self, p, x), y)
            loss.backward()
            opt.step()
            return loss.detach()
        return self.jit(step)

    def train_step(self, forward, params, x, y, optimizer, lr):
        step = self._step(forward, params, optimizer, lr)
        x, y = self.put(x), self.put(y.astype(np.int64))
        return lambda: (step(x, y),)

    def train_loop(self, forward, params, xs, ys, optimizer, lr):
        step = self._step(forward, params, optimizer, lr)
        xs, ys = self.put(xs), self.put(ys.astype(np.int64))
        return lambda: (self.torch.stack([step(xs[i], ys[i]) for i in range(len(xs))]),)


def adapter(framework, on_gpu):
    return (Torch if framework.startswith("torch") else Functional)(framework, on_gpu)


# ------------------------------------------------------------------------------------------
# Workloads: `setup(fw, size) -> (run, check)`.  run() starts one call and returns what it
# computes (without waiting); check(outputs of the first two calls) -> float.

def sum_of_squares(fw):
    return lambda outs: float(np.sum(np.square(fw.to_numpy(outs[0]).astype(np.float64))))


def g1_gelu(fw, size):
    f = fw.jit(lambda x, a, b: gelu(fw.m, x, a, b))
    x = fw.put(normal(1, size["elements"]))
    return (lambda: f(x, 1.5, 0.25)), sum_of_squares(fw)


def g2_softmax(fw, size):
    def softmax(x):
        e = fw.m.exp(x - fw.row_max(x))
        return e / fw.row_sum(e)
    f = fw.jit(softmax)
    x = fw.put(normal(2, size["softmax"]))
    return (lambda: f(x)), sum_of_squares(fw)


def g3_matmul(fw, size):
    f = fw.jit(lambda a, b: a @ b)
    n = size["matmul"]
    a, b = fw.put(normal(3, (n, n))), fw.put(normal(4, (n, n)))
    return (lambda: f(a, b)), sum_of_squares(fw)


def loss_of_second_call(fw):
    """The loss the second step returns: the loss after one update."""
    return lambda outs: float(fw.to_numpy(outs[1][0]))


def g4_mlp_adam(fw, size):
    rng = np.random.default_rng(40)
    params = dense_params(rng, size["mlp"])
    x, y = classification_batch(rng, (size["batch"], size["mlp"][0]))
    return fw.train_step(mlp_forward, params, x, y, "adam", 1e-3), loss_of_second_call(fw)


def g5_lenet_sgd(fw, size):
    rng = np.random.default_rng(50)
    params = lenet_params(rng)
    x, y = classification_batch(rng, (size["lenet_batch"], 1, 28, 28))
    return fw.train_step(lenet_forward, params, x, y, "sgd", 0.01), loss_of_second_call(fw)


def g6_mlp_sgd_scan(fw, size):
    rng = np.random.default_rng(60)
    params = dense_params(rng, size["mlp"])
    xs, ys = classification_batch(rng, (size["batch"], size["mlp"][0]), size["steps"])
    run = fw.train_loop(mlp_forward, params, xs, ys, "sgd", 0.01)
    return run, lambda outs: float(fw.to_numpy(outs[0][0])[-1])   # the first call's last loss


WORKLOADS = {"G1": g1_gelu, "G2": g2_softmax, "G3": g3_matmul, "G4": g4_mlp_adam,
             "G5": g5_lenet_sgd, "G6": g6_mlp_sgd_scan}


def bytes_moved(workload, size):
    """G1 and G2: the input read once and the output written once (as STREAM counts)."""
    if workload == "G1":
        return 2 * 4 * size["elements"]
    if workload == "G2":
        return 2 * 4 * size["softmax"][0] * size["softmax"][1]
    return None


# ------------------------------------------------------------------------------------------
# The worker: one framework, one workload, one JSON line on stdout; progress on stderr.

class OutOfTime(Exception):
    """The worker's time is too short for even one timed call (reported as a timeout)."""


PROGRESS = ("first call", "batch")   # how the worker's progress lines on stderr start


def log(message):
    print(message, file=sys.stderr, flush=True)


def timed(fw, run):
    """One synchronised call: (its output, seconds)."""
    start = time.perf_counter()
    out = run()
    fw.wait(out)
    return out, time.perf_counter() - start


def measure(fw, run, deadline):
    """Warm up, then the median over up to BATCHES batches of ~BATCH_SECONDS each (fewer if
    `deadline` (time.monotonic) would pass), each ending with a synchronisation.  Returns
    the result fields and the first two calls' outputs (for the check)."""
    outs, first = [], None
    for i in range(fw.warmups):
        out, seconds = timed(fw, run)
        if i == 0:
            first = seconds
            fw.after_first_call()
            log(f"first call {seconds:.3f} s")
        outs.append(out)
    left = deadline - time.monotonic()
    if left < first:   # the first call bounds a call's time from above (it compiles too)
        raise OutOfTime(f"the first call (compiling) took {first:.1f} s and only {left:.1f} s "
                        "are left for timed calls")
    out, single = timed(fw, run)            # the calibration call
    outs.append(out)
    outs = outs[:2]
    per_batch = max(1, int(BATCH_SECONDS / max(single, 1e-9)))
    samples = [single] if per_batch == 1 else []   # a one-call batch: it counts
    while len(samples) < BATCHES and time.monotonic() + per_batch * single < deadline:
        start = time.perf_counter()
        for _ in range(per_batch):
            out = run()
        fw.wait(out)
        samples.append((time.perf_counter() - start) / per_batch)
        log(f"batch {len(samples)}: {per_batch} calls, {samples[-1]:.6f} s per call")
    if not samples:   # one calibration call fits, a whole batch did not
        samples, per_batch = [single], 1
    return dict(seconds=statistics.median(samples), batches=len(samples),
                calls_per_batch=per_batch, first_call_s=first), outs


def worker(framework, workload, small, budget):
    """Measure `workload` in `framework`; prints the JSON line; the process's exit status."""
    started = time.monotonic()
    faulthandler.dump_traceback_later(max(budget - 3, 1))   # where it was, if it times out
    record = dict(framework=framework, workload=workload, small=small, seconds=None,
                  check=None, error=None)
    on_gpu = bool(gpu_names())
    try:
        if not on_gpu and not small:
            raise RuntimeError("no GPU (nvidia-smi lists none); use --small to run on the CPU")
        if framework == "fjit":
            os.environ["FJIT_PLATFORM"] = "cuda"
            if not on_gpu:
                os.environ["FJIT_CUDA_EMULATION"] = "1"
        fw = adapter(framework, on_gpu)
        record["device"] = fw.device_name
        run, check = WORKLOADS[workload](fw, SIZES[small])
        # leave a quarter of what is left for the check and the exit
        deadline = time.monotonic() + 0.75 * (budget - (time.monotonic() - started))
        result, outs = measure(fw, run, deadline)
        record.update(result)
        record["check"] = check(outs)
    except OutOfTime as e:
        record.update(status="timeout", error=str(e))
    except Exception as e:   # noqa: BLE001  (any failure is a result to report)
        traceback.print_exc()
        record["error"] = f"{type(e).__name__}: {e}"[:2000]
    faulthandler.cancel_dump_traceback_later()
    print(json.dumps(record), flush=True)
    return 0 if record["error"] is None else 1


# ------------------------------------------------------------------------------------------
# The runner.

def gpu_names():
    """The GPUs nvidia-smi lists (no framework imported: workers own the GPU)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] \
        if out.returncode == 0 else []


def available(framework):
    module = "torch" if framework.startswith("torch") else framework
    return importlib.util.find_spec(module) is not None


def tail(text, chars=3000):
    return text[-chars:] if text else ""


def run_worker(framework, workload, small, timeout):
    """One worker process: its JSON record plus status ok / failed / timeout."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, workload,
           "--timeout", str(timeout)] + (["--small"] if small else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    start = time.monotonic()
    # its own session, so a timeout ends its helpers too (torch.compile's compile workers)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        status = None
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        status = "timeout"
    record = dict(framework=framework, workload=workload, small=small, seconds=None,
                  check=None, error=None)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if lines:
        record.update(json.loads(lines[-1]))
    if status is None:   # the worker's own verdict, else whether it measured anything
        status = record.get("status") or (
            "ok" if proc.returncode == 0 and record["seconds"] is not None else "failed")
    if status == "failed" and record["error"] is None:
        record["error"] = f"exit status {proc.returncode}, no result"
    if status == "timeout" and record["error"] is None:
        progress = [line for line in stderr.splitlines() if line.startswith(PROGRESS)]
        record["error"] = f"killed after --timeout {timeout} s" + \
            (f" (last progress: {progress[-1]})" if progress else " (before its first call)")
    record.update(status=status, wall_s=round(time.monotonic() - start, 2))
    if status != "ok":
        record["stderr_tail"] = tail(stderr)
    return record


def format_time(seconds):
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


def summarise(records):
    """{(workload, framework): (median seconds or None, what to print instead)}."""
    cells = {}
    for r in records:
        cells.setdefault((r["workload"], r["framework"]), []).append(r)
    out = {}
    for key, runs in cells.items():
        good = [r["seconds"] for r in runs if r["status"] == "ok"]
        if good:
            mark = "" if len(good) == len(runs) else f" ({len(good)} of {len(runs)} rounds)"
            out[key] = (statistics.median(good), format_time(statistics.median(good)) + mark)
        else:
            out[key] = (None, runs[-1]["status"])
    return out


def table(workloads, frameworks, medians, small):
    """The markdown table: medians, then other/fjit ratios (> 1: fjit faster)."""
    others = [f for f in frameworks if f != "fjit"] if "fjit" in frameworks else []
    head = ["workload", *frameworks, *(f"{f}/fjit" for f in others)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for w in workloads:
        cells = [f"{w} {LABELS[w]}"] + [medians.get((w, f), (None, "n/a"))[1]
                                        for f in frameworks]
        fjit_s = medians.get((w, "fjit"), (None,))[0]
        for f in others:
            other = medians.get((w, f), (None,))[0]
            cells.append("n/a" if fjit_s is None or other is None else f"{other / fjit_s:.2f}")
        rows.append("| " + " | ".join(cells) + " |")
    memory_bound = [w for w in workloads if bytes_moved(w, SIZES[small])]
    if memory_bound:
        rows += ["", "| GB/s (input read once + output written once) | " +
                 " | ".join(frameworks) + " |", "|---|" + "---:|" * len(frameworks)]
        for w in memory_bound:
            nbytes = bytes_moved(w, SIZES[small])
            cells = [f"{w} ({nbytes / 1e6:.0f} MB per call)"]
            for f in frameworks:
                seconds = medians.get((w, f), (None,))[0]
                cells.append("n/a" if seconds is None else f"{nbytes / seconds / 1e9:.1f}")
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def disagreements(records, rtol):
    """Lines flagging checks that differ from the reference framework's (JAX's, else
    PyTorch's, else the first one's)."""
    lines = []
    for w in dict.fromkeys(r["workload"] for r in records):
        checks = {}
        for r in records:
            if r["workload"] == w and r["check"] is not None:
                checks.setdefault(r["framework"], r["check"])
        ref = next((f for f in ("jax", "torch", "torch.compile", *checks) if f in checks), None)
        for f, value in checks.items():
            if not math.isclose(value, checks[ref], rel_tol=rtol):
                lines.append(f"- WRONG RESULT? {w} {f}: check {value:.7g}, {ref} "
                             f"{checks[ref]:.7g} (relative difference "
                             f"{abs(value - checks[ref]) / abs(checks[ref]):.2g} > {rtol})")
        if checks and not any(line.startswith(f"- WRONG RESULT? {w} ") for line in lines):
            lines.append(f"- {w}: checks agree within {rtol} (" +
                         ", ".join(f"{f} {v:.7g}" for f, v in checks.items()) + ")")
    return lines


def runner(args):
    workloads = args.workloads.split(",")
    unknown = [w for w in workloads if w not in WORKLOADS]
    wanted = args.frameworks.split(",")
    unknown += [f for f in wanted if f not in FRAMEWORKS]
    if unknown:
        sys.exit(f"unknown workloads or frameworks {unknown}; known: {list(WORKLOADS)}, "
                 f"{FRAMEWORKS}")
    gpus = gpu_names()
    if not gpus and not args.small:
        print("No GPU found (nvidia-smi lists none): nothing to measure.  "
              "`--small` runs tiny sizes on the CPU (fjit on its emulated GPU).")
        return 0
    frameworks = [f for f in wanted if available(f)]
    notes = [f"- {f} skipped: not importable" for f in wanted if f not in frameworks]
    where = (f"GPU: {gpus[0]} (nvidia-smi)" + (f", {len(gpus)} GPUs, the first used"
                                               if len(gpus) > 1 else "")) if gpus else \
        "no GPU: torch and jax on the CPU, fjit on its emulated GPU (FJIT_CUDA_EMULATION=1)"
    print(f"# fjit GPU benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, {where}; "
          f"{platform.node()}, {os.cpu_count()} cpus, python {platform.python_version()}; "
          f"{'--small sizes' if args.small else 'full sizes'}, {args.rounds} round(s)",
          flush=True)

    started, records, timed_out = time.monotonic(), [], set()
    for round_ in range(args.rounds):
        for w in workloads:
            for f in frameworks:
                left = args.budget - (time.monotonic() - started) if args.budget else math.inf
                skip = ("timed out in an earlier round" if (w, f) in timed_out else
                        "--budget used up" if left < 10 else None)
                if skip:
                    records.append(dict(framework=f, workload=w, round=round_, status="skipped",
                                        seconds=None, check=None, error=skip))
                    continue
                record = run_worker(f, w, args.small, int(min(args.timeout, left)))
                record["round"] = round_
                records.append(record)
                if record["status"] == "timeout":
                    timed_out.add((w, f))
                print(f"#   round {round_ + 1} {w} {f}: {record['status']}" +
                      (f" {format_time(record['seconds'])}" if record["status"] == "ok" else
                       f" ({record['error']})"), file=sys.stderr, flush=True)

    print()
    print(table(workloads, frameworks, summarise(records), args.small))
    print("\nMedian time per call over rounds; `X/fjit` = X's time / fjit's (> 1: fjit faster).")
    devices = {r["framework"]: r["device"] for r in records if r.get("device")}
    notes += [f"- {f} ran on {d}" for f, d in devices.items()]
    notes += [f"- {r['workload']} {r['framework']} {r['status']}: {r['error']}" for r in records
              if r["status"] != "ok" and r["error"] != "timed out in an earlier round"]
    notes += disagreements(records, args.rtol)
    notes = list(dict.fromkeys(notes))   # each note once, in order
    print("\n".join(notes))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), gpus=gpus,
                           host=platform.node(), argv=sys.argv[1:], sizes=SIZES[args.small],
                           notes=notes, results=records), f, indent=1)
        print(f"\nRaw results: {args.out}")
    print(f"# done in {time.monotonic() - started:.0f} s")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"),
                        help="measure one workload in one framework; print one JSON line")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="tiny sizes; CPU-only is fine")
    parser.add_argument("--out", help="write every raw result here as JSON")
    parser.add_argument("--timeout", type=float, default=120,
                        help="seconds per worker (a worker's measurement is cut short to fit)")
    parser.add_argument("--budget", type=float, default=0,
                        help="seconds for the whole run: no worker starts after (0: none)")
    parser.add_argument("--rtol", type=float, default=1e-3,
                        help="checks further apart than this are flagged")
    args = parser.parse_args()
    if args.worker:
        framework, workload = args.worker
        return worker(framework, workload, args.small, args.timeout)
    return runner(args)


if __name__ == "__main__":
    sys.exit(main())
