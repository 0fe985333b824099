"""The examples run and reach the accuracies the README states.  They need scikit-learn,
matplotlib and tqdm (in the `test` extra, and alone in `examples`); without them these tests
skip.  Each runs once (on the
default backend), in a new process, from a temporary directory (the plots land there)."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def _run(backend, tmp_path, script, *args):
    if backend != "c":
        pytest.skip("examples run once, on the default backend")
    for module in ("sklearn", "matplotlib", "tqdm"):
        pytest.importorskip(module)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([EXAMPLES, ROOT]))  # ROOT: uninstalled
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("script, floor", [("digits_mlp.py", 0.97), ("digits_cnn.py", 0.98)])
def test_classifiers_reach_the_stated_accuracy(backend, tmp_path, script, floor):
    stdout = _run(backend, tmp_path, script)
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", stdout).group(1))
    assert accuracy >= floor, stdout
    assert any(p.suffix == ".png" for p in tmp_path.iterdir())


def test_lsgan_and_per_example_gradients_run(backend, tmp_path):
    _run(backend, tmp_path, "digits_lsgan.py", "--steps", "200")
    assert (tmp_path / "digits_lsgan_samples.png").exists()
    stdout = _run(backend, tmp_path, "per_example_gradients.py", "--epochs", "10")
    private = float(re.search(r"test accuracy ([0-9.]+) with clipped", stdout).group(1))
    assert private > 0.8, stdout


def test_cifar_resnet_trains_and_its_weights_load_into_pytorch(backend, tmp_path):
    import numpy as np
    stdout = _run(backend, tmp_path, "cifar_resnet.py", "--epochs", "1", "--train-size", "64",
                  "--batch-size", "32")
    loss = float(re.search(r"epoch 1: loss ([0-9.]+)", stdout).group(1))
    assert np.isfinite(loss) and (tmp_path / "cifar_resnet_history.png").exists()
    weights = dict(np.load(tmp_path / "cifar_resnet.npz"))
    assert weights["fc.weight"].shape == (10, 512)   # PyTorch's (out, in)
    torch = pytest.importorskip("torch", reason="the saved weights are loaded into PyTorch")
    import torch_reference_models
    tmodel = torch_reference_models.resnet(18, 10, "cifar")
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})


def test_dcgan_lsgan_runs(backend, tmp_path):
    stdout = _run(backend, tmp_path, "shapes_lsgan.py", "--steps", "3", "--width", "8")
    assert "3 steps in" in stdout
    assert (tmp_path / "shapes_lsgan_samples.png").exists()
