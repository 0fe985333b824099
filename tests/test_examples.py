"""The examples run and reach the accuracies the README states.  They need the `examples`
extra (scikit-learn, matplotlib, tqdm); without it these tests skip.  Each runs once (on the
default backend), in a new process, from a temporary directory (the plots land there)."""
import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _run(backend, tmp_path, script, *args):
    if backend != "c":
        pytest.skip("examples run once, on the default backend")
    for module in ("sklearn", "matplotlib", "tqdm"):
        pytest.importorskip(module)
    env = dict(os.environ, PYTHONPATH=EXAMPLES)
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
