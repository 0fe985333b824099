"""The README's example runs as written and prints the Program it shows."""
import contextlib
import io
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _blocks(language):
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_readme_example_runs_and_prints_the_shown_program():
    code = _blocks("python")[0]
    shown_program = _blocks("text")[0].strip()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert shown_program in out.getvalue()


def test_quickstart_example_matches_the_readme():
    example = open(os.path.join(ROOT, "examples", "quickstart.py")).read()
    for line in _blocks("python")[0].splitlines():
        if line.strip() and not line.startswith("print("):
            assert line in example


def test_readme_gradient_program_is_what_fjit_prints():
    code, shown = _blocks("python")[1], _blocks("text")[1].strip()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile("import fjit\n" + code, "README.md", "exec"), {})
    assert out.getvalue().strip() == shown


def test_readme_compiler_example_runs():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_blocks("python")[2], "README.md", "exec"), {})
    assert "# Kernels" in out.getvalue() and "kernel_0" in out.getvalue()


def test_readme_model_example_runs_and_trains(tmp_path, monkeypatch):
    import numpy as np
    code = next(b for b in _blocks("python") if "nn.Sequential" in b)
    monkeypatch.chdir(tmp_path)   # it writes checkpoint.npz
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    rng = np.random.default_rng(0)
    x = rng.random((16, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 16).astype(np.int32)
    params, opt_state = scope["params"], scope["opt_state"]
    losses = []
    for _ in range(5):
        params, opt_state, value = scope["train_step"](params, opt_state, x, y)
        losses.append(float(value))
    assert losses[-1] < losses[0]


def test_readme_training_loop_example_runs():
    import numpy as np
    code = next(b for b in _blocks("python") if "fjit.train_loop" in b)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 16, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)
    params, losses = scope["train"](np.zeros(3, np.float32), (x, y))
    assert losses.shape == (20,) and float(losses[-1]) < float(losses[0])
    np.testing.assert_allclose(np.asarray(params), [1.0, -2.0, 0.5], atol=0.05)
    many, _ = scope["several"](np.zeros((4, 3), np.float32), (x, y))
    assert many.shape == (4, 3)


def test_readme_pytorch_example_runs(tmp_path):
    """The from-PyTorch block, with torchvision's resnet18 from torch_reference_models where
    torchvision does not import (its wheel here is built for another torch)."""
    import types
    import numpy as np
    import pytest
    torch = pytest.importorskip("torch", reason="the block converts a PyTorch model")
    import fjit
    import torch_reference_models
    code = next(b for b in _blocks("python") if "nn.from_torch" in b)
    assert code.startswith("import torch, torchvision")
    try:
        import torchvision
        torchvision.models.resnet18()
    except Exception:
        torchvision = types.SimpleNamespace(models=types.SimpleNamespace(
            resnet18=lambda: torch_reference_models.resnet(18)))
    images = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    scope = {"nn": fjit.nn, "images": images, "torchvision": torchvision}
    exec(compile(code.replace("import torch, torchvision", "import torch", 1), "README.md",
                 "exec"), scope)
    assert scope["logits"].shape == (2, 1000)
    x = torch.from_numpy(images)
    scope["tmodel"].eval()
    want = scope["tmodel"](x).detach().numpy()
    got = scope["net"].apply(scope["params"], images, state=scope["state"])[0]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-3, atol=1e-4)
