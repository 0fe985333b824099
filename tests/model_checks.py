"""Checks shared by the model-zoo and converter tests: an fjit model against the PyTorch
model it came from, outputs, BatchNorm state and every parameter's gradient, each as close
to a float64 reference as PyTorch's own float32 result.  Imported only where torch is."""
import numpy as np

import fjit
from fjit import nn


def _rng(seed=0):
    return np.random.default_rng(seed)


def _run_torch(tmodel, inputs, weights, train, dtype):
    """PyTorch's outputs, state and parameter gradients of sum(outputs * weights) (weights
    None: drawn to the output's shape), computed in `dtype` on a copy of tmodel."""
    import copy
    import torch
    model = copy.deepcopy(tmodel).to(dtype).train(train)
    args = [torch.from_numpy(np.asarray(x)) for x in inputs]
    args = [a.to(dtype) if a.is_floating_point() else a for a in args]
    out = model(*args)
    if weights is None:
        weights = _rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
    (out * torch.from_numpy(weights).to(dtype)).sum().backward()
    grads = {n: p.grad.double().numpy() for n, p in model.named_parameters()}
    state = {n: v.double().numpy() for n, v in model.state_dict().items()}
    return out.detach().double().numpy(), state, grads, weights


def _within(name, got, f32, f64, tol, factor=4.0):
    """fjit's float32 result is as close to the float64 reference as PyTorch's float32 one
    (within `factor`), or within tol of it relative to its scale: deep networks with
    BatchNorm over few values amplify rounding in both frameworks alike."""
    got = np.asarray(got, np.float64)
    scale = max(np.abs(f64).max(), 1e-6)
    theirs = np.abs(f32 - f64).max()
    ours = np.abs(got - f64).max()
    assert got.shape == f64.shape, (name, got.shape, f64.shape)
    assert ours <= max(factor * theirs, tol * scale), \
        f"{name}: fjit is {ours:.3g} from the float64 reference, PyTorch float32 {theirs:.3g}"


def compare_with_torch(fmodel, tmodel, inputs, *, train=True, tol=1e-4, loaded=None):
    """Load tmodel's weights into fmodel (or take `loaded`: (params, state)); compare
    outputs, new state and gradients with PyTorch's, in float32 against a float64
    reference."""
    import torch
    if loaded is None:
        sd = {k: v.detach().numpy() for k, v in tmodel.state_dict().items()}
        loaded = nn.load_torch_state_dict(fmodel, sd)
    params, state = loaded
    out32, state32, grads32, weights = _run_torch(tmodel, inputs, None, train, torch.float32)
    out64, state64, grads64, _ = _run_torch(tmodel, inputs, weights, train, torch.float64)
    got, new_state = fmodel.apply(params, *inputs, state=state, train=train)
    _within("output", got, out32, out64, tol)
    after = nn.to_torch_state_dict(fmodel, params, new_state)
    for name in state64:   # running statistics and batch counts
        _within(name, after[name], state32[name], state64[name], tol)

    def loss(p):
        return (fmodel.apply(p, *inputs, state=state, train=train)[0] * weights).sum()

    grads = nn.to_torch_state_dict(fmodel, fjit.grad(loss)(params))
    assert set(grads) == set(grads64)
    for name in grads64:
        _within(f"gradient of {name}", grads[name], grads32[name], grads64[name], tol)
