"""Arrays on devices other than the CPU, with a fake platform registered from this file
alone: its buffers are opaque objects (not NumPy arrays) and its backend unwraps them around
the configured backend's executables.  Checks that placement, transfers, eager ops, jit,
control flow and transformations all keep data on the device, and count every copy."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.config import config
from fjit.devices import (Device, Platform, register_platform, reset_transfer_stats,
                          transfer_stats, unregister_platform)
from fjit.errors import FjitValueError
from fjit.runtime.backend import executable_for, register_backend, unregister_backend


class HeldBuffer:
    """A fake device's memory: a private copy, readable only through the platform."""

    __slots__ = ("_data", "device")

    def __init__(self, data, device):
        self._data = np.array(data, copy=True)
        self.device = device


class FakeExecutable:
    """Runs `program` with the host backend's executable, checking every input is a buffer
    on one fake device: a host array reaching it means a transfer went uncounted."""

    built = 0

    def __init__(self, program, host_backend):
        self.inner = executable_for(program, host_backend)
        FakeExecutable.built += 1

    def __call__(self, buffers):
        devices = {b.device for b in buffers}
        assert all(type(b) is HeldBuffer for b in buffers), [type(b) for b in buffers]
        assert len(devices) <= 1, devices
        device = devices.pop() if devices else FAKE.devices()[0]
        outs = self.inner([b._data for b in buffers])
        return [HeldBuffer(o, device) for o in outs]


class FakePlatform(Platform):
    name = "fakedev"

    def __init__(self):
        self._devices = [Device(self, 0), Device(self, 1)]

    def devices(self):
        return list(self._devices)

    def backend(self, device=None):
        return f"fakedev-{config.backend}"   # one cache per host backend

    def to_host(self, buffer):
        return np.array(buffer._data, copy=True)

    def from_host(self, value, device):
        assert value.flags.c_contiguous   # the contract: a raw copy of nbytes would do
        return HeldBuffer(value, device)

    waits = 0

    def wait(self, buffer):
        FakePlatform.waits += 1


FAKE = FakePlatform()


@pytest.fixture
def fake(backend):
    if backend == "cuda":   # its executables copy to the (emulated) GPU: counted transfers
        pytest.skip("the fake device runs a host backend's executables inside it")
    register_platform(FAKE)
    for host in ("c", "reference"):
        register_backend(f"fakedev-{host}", lambda p, host=host: FakeExecutable(p, host))
    reset_transfer_stats()
    yield FAKE.devices()
    for host in ("c", "reference"):
        unregister_backend(f"fakedev-{host}")
    unregister_platform("fakedev")


def copies():
    stats = transfer_stats()
    return stats["host_to_device_copies"], stats["device_to_host_copies"]


def on(device, x):
    return fjit.device_put(np.asarray(x), device)


def assert_on(device, *arrays):
    for x in arrays:
        assert x.device == device and type(x._buffer) is HeldBuffer, (x.device, type(x._buffer))


def test_devices_are_listed_by_platform(fake):
    assert fjit.devices("fakedev") == fake
    gpus = [d for d in fjit.devices() if d.platform == "cuda"]   # the emulated one, on cuda
    assert fjit.devices()[0] == fjit.default_device() and fjit.devices()[1:] == gpus + fake
    assert repr(fake[1]) == "FakedevDevice(id=1)" and fake[1].platform == "fakedev"
    assert fjit.device_count() == 3 + len(gpus) and fjit.device_count("fakedev") == 2
    assert fjit.local_devices("fakedev") == fake and fjit.default_backend() == "cpu"
    with pytest.raises(RuntimeError, match="unknown platform 'tpu'.*known"):
        fjit.devices("tpu")
    with pytest.raises(FjitValueError, match="not available"):
        fjit.device_put(np.ones(2), "fakedev")


def test_device_put_and_reading_back_count_one_copy_each(fake):
    x = on(fake[0], np.arange(6.0, dtype=np.float32))
    assert_on(fake[0], x)
    assert x.devices() == {fake[0]}
    assert transfer_stats()["host_to_device_bytes"] == 24
    np.testing.assert_array_equal(np.asarray(x), np.arange(6.0))
    assert float(x[2]) == 2.0
    assert "3." in repr(x)
    assert copies() == (1, 2)   # x once (then cached), x[2] once
    y = fjit.device_put(x, fake[1])
    assert_on(fake[1], y)
    assert copies() == (2, 2)   # from x's cached host copy
    assert fjit.device_put(y, fake[1]) is y
    got = fjit.device_get({"y": y, "n": 3})
    assert type(got["y"]) is np.ndarray and got["n"] == 3
    np.testing.assert_array_equal(got["y"], np.arange(6.0))
    assert copies() == (2, 3)


def test_eager_operations_stay_on_the_device(fake):
    a = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    x, w = on(fake[0], a), on(fake[0], b)
    reset_transfer_stats()
    h = jnp.tanh(x @ w)
    s = h.sum(axis=0)
    m = jnp.maximum(x[:, :3], h)
    parts = jnp.split(x, [2], axis=1)
    assert_on(fake[0], h, s, m, *parts)
    assert copies() == (0, 0)
    np.testing.assert_allclose(np.asarray(s), np.tanh(a @ b).sum(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(m), np.maximum(a[:, :3], np.tanh(a @ b)), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(parts[1]), a[:, 2:])


def test_host_operands_follow_the_device_and_two_devices_are_an_error(fake):
    x = on(fake[0], np.ones(3, np.float32))
    reset_transfer_stats()
    y = x + np.arange(3, dtype=np.float32)
    assert_on(fake[0], y)
    assert copies() == (1, 0)
    np.testing.assert_array_equal(np.asarray(y), [1, 2, 3])
    z = on(fake[1], np.ones(3, np.float32))
    with pytest.raises(FjitValueError, match=r"add: .*FakedevDevice\(id=0\).*"
                                             r"FakedevDevice\(id=1\)"):
        x + z
    with pytest.raises(FjitValueError, match=r"jit\(<lambda>\): operands live on different"):
        fjit.jit(lambda a, b: a * b)(x, z)


def test_jit_runs_where_its_operands_live_without_transfers(fake):
    def f(a, b):
        return jnp.tanh(a @ b).sum(axis=0) * 2, a.max()
    a = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
    x, w = on(fake[1], a), on(fake[1], b)
    reset_transfer_stats()
    jf = fjit.jit(f)
    s, m = jf(x, w)
    s2, _ = jf(x, w)
    assert_on(fake[1], s, m, s2)
    assert copies() == (0, 0)
    np.testing.assert_allclose(np.asarray(s), np.tanh(a @ b).sum(0) * 2, rtol=1e-5)
    assert float(m) == a.max()
    cpu_s, _ = jf(a, b)      # the same function on host operands stays on the CPU
    assert cpu_s.device == fjit.default_device()
    np.testing.assert_allclose(np.asarray(cpu_s), np.asarray(s), rtol=1e-6)


def test_captured_device_constants_are_copied_to_another_device_once(fake):
    c = on(fake[0], np.arange(4, dtype=np.float32))
    f = fjit.jit(lambda x: x * c)
    reset_transfer_stats()
    y = f(np.ones(4, np.float32))        # the host operand follows c
    assert_on(fake[0], y)
    assert copies() == (1, 0)
    x1 = on(fake[1], np.ones(4, np.float32))
    with pytest.raises(FjitValueError, match="different devices"):
        f(x1)
    np.testing.assert_array_equal(np.asarray(y), np.arange(4))


def test_control_flow_on_the_device(fake):
    xs = np.arange(12, dtype=np.float32).reshape(4, 3)
    dxs, d0 = on(fake[0], xs), on(fake[0], np.zeros(3, np.float32))
    reset_transfer_stats()

    def cumulative(carry, x):
        carry = carry + x
        return carry, carry * 2
    carry, ys = lax.scan(cumulative, d0, dxs)
    n = lax.while_loop(lambda c: c[0] < 100, lambda c: c * 3, d0 + 1)
    picked = lax.cond(dxs[0, 0] > 5, lambda v: v - 1, lambda v: v + 1, d0)
    jitted = fjit.jit(lambda c, x: lax.scan(cumulative, c, x))(d0, dxs)
    assert_on(fake[0], carry, ys, n, picked, *jitted)
    np.testing.assert_array_equal(np.asarray(carry), xs.sum(0))
    np.testing.assert_array_equal(np.asarray(ys), np.cumsum(xs, 0) * 2)
    np.testing.assert_array_equal(np.asarray(n), [243, 243, 243])
    np.testing.assert_array_equal(np.asarray(picked), [1, 1, 1])
    np.testing.assert_array_equal(np.asarray(jitted[1]), np.cumsum(xs, 0) * 2)


def test_grad_and_vmap_of_device_arrays(fake):
    a = np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32)
    w0 = np.random.default_rng(3).standard_normal(4).astype(np.float32)
    x, w = on(fake[0], a), on(fake[0], w0)

    def loss(w, x):
        return jnp.sum(jnp.tanh(x @ w) ** 2)
    g = fjit.grad(loss)(w, x)
    gj = fjit.jit(fjit.grad(loss))(w, x)
    rows = fjit.vmap(lambda r: jnp.dot(r, w))(x)
    assert_on(fake[0], g, gj, rows)
    t = np.tanh(a @ w0)
    want = a.T @ (2 * t * (1 - t ** 2))
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gj), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(rows), a @ w0, rtol=1e-5)


def test_a_jitted_training_loop_makes_no_transfers(fake):
    rng = np.random.default_rng(4)
    params = fjit.device_put({"w": rng.standard_normal((5, 2)).astype(np.float32),
                              "b": np.zeros(2, np.float32)}, fake[0])
    batches = [fjit.device_put((rng.standard_normal((8, 5)).astype(np.float32),
                                rng.standard_normal((8, 2)).astype(np.float32)), fake[0])
               for _ in range(3)]

    @fjit.jit
    def step(params, batch):
        x, y = batch

        def loss(p):
            return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)
        value, grads = fjit.value_and_grad(loss)(params)
        return fjit.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads), value

    reset_transfer_stats()
    losses = []
    for batch in batches * 3:
        params, value = step(params, batch)
        losses.append(value)
    assert copies() == (0, 0)
    assert_on(fake[0], params["w"], params["b"], *losses)
    assert float(losses[-1]) < float(losses[0])


def test_equal_params_of_different_types_are_different_programs(fake):
    x = on(fake[0], np.ones(2, np.float32))
    plus = lax.pad(x, 0.0, [(1, 0, 0)])
    minus = lax.pad(x, -0.0, [(1, 0, 0)])
    assert not np.signbit(np.asarray(plus)[0]) and np.signbit(np.asarray(minus)[0])


def test_like_and_device_keywords_place_results(fake):
    x = on(fake[1], np.arange(3, dtype=np.float32))
    z, o, f = jnp.zeros_like(x), jnp.ones_like(x), jnp.full_like(x, 7)
    assert_on(fake[1], z, o, f)
    np.testing.assert_array_equal(np.asarray(f), [7, 7, 7])
    assert jnp.zeros_like(x, device=fjit.default_device()).device == fjit.default_device()
    made = [jnp.zeros(2, device=fake[0]), jnp.ones((2, 2), device=fake[0]),
            jnp.full(3, 2.0, device=fake[0]), jnp.arange(4, device=fake[0]),
            jnp.linspace(0, 1, 5, device=fake[0]), jnp.eye(2, device=fake[0]),
            x.astype(jnp.int32, device=fake[0])]
    assert_on(fake[0], *made)
    np.testing.assert_array_equal(np.asarray(made[3]), np.arange(4))
    np.testing.assert_array_equal(np.asarray(made[-1]), [0, 1, 2])
    with pytest.raises(FjitValueError, match="traced value.*inside a transformation"):
        fjit.jit(lambda a: fjit.device_put(a, fake[1]))(np.ones(2))
    assert float(fjit.jit(lambda a: jnp.zeros_like(x).sum() + a)(1.0)) == 1.0


def test_eager_cond_on_the_device_compiles_once(fake):
    x = on(fake[0], np.arange(3, dtype=np.float32))

    def f(v):
        return lax.cond(v[0] < 1, lambda u: jnp.sin(u), lambda u: u * 2, v)
    fjit.jvp(f, (x,), (x,))
    before = FakeExecutable.built
    for _ in range(4):
        _, tangent = fjit.jvp(f, (x,), (x,))
    assert FakeExecutable.built == before
    assert_on(fake[0], tangent)
    np.testing.assert_allclose(np.asarray(tangent), np.cos(np.arange(3)) * np.arange(3),
                               rtol=1e-6)


def test_broadcast_host_operands_arrive_contiguous(fake):
    x = on(fake[0], np.ones((4, 3), np.float32))
    row = np.broadcast_to(np.arange(3, dtype=np.float32), (4, 3))   # zero strides
    y = x + row
    assert_on(fake[0], y)
    np.testing.assert_array_equal(np.asarray(y), 1 + row)


def test_a_captured_device_scalar_keeps_the_call_on_its_device(fake):
    s = on(fake[0], np.float32(3))
    reset_transfer_stats()
    y = fjit.jit(lambda a: a * s)(np.ones(2, np.float32))
    assert_on(fake[0], y)
    assert copies() == (1, 0)   # the host operand, not the scalar


def test_devices_survive_pickle_and_copy(fake):
    import copy
    import pickle
    for device in (fjit.default_device(), fake[1]):
        assert copy.deepcopy(device) == device and copy.copy(device) is device
        assert pickle.loads(pickle.dumps(device)) == device


def test_tracer_after_a_device_operand_is_an_escaped_tracer_error(fake):
    x = on(fake[0], np.ones(2, np.float32))
    leaked = []
    fjit.jit(lambda a: leaked.append(a) or a)(np.ones(2, np.float32))
    with pytest.raises(fjit.UnexpectedTracerError):
        lax.add(x, leaked[0])


def test_block_until_ready_waits_on_the_device(fake):
    x = on(fake[0], np.ones(2, np.float32))
    before = FakePlatform.waits
    assert fjit.block_until_ready({"x": x}) == {"x": x}
    assert x.block_until_ready() is x
    assert FakePlatform.waits == before + 2


def test_eager_gradients_and_tangents_land_beside_their_primals(fake):
    params = fjit.device_put({"w": np.ones(3, np.float32), "b": np.float32(0.5),
                              "unused": np.ones(2, np.float32)}, fake[0])
    xs = on(fake[0], np.arange(6, dtype=np.float32).reshape(2, 3))

    def loss(q):
        return jnp.sum(xs @ q["w"] + q["b"])
    grads = fjit.grad(loss)(params)
    assert_on(fake[0], grads["w"], grads["b"], grads["unused"])
    assert float(grads["b"]) == 2.0 and np.asarray(grads["unused"]).tolist() == [0, 0]
    _, tangent = fjit.jvp(lambda b: b * 0 + 1.0, (params["b"],), (params["b"],))
    assert_on(fake[0], tangent)
