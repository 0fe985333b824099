"""The model zoo (fjit.models) against PyTorch: each architecture built in PyTorch (see
torch_reference_models.py), its weights loaded into fjit's by name, then the forward outputs,
the BatchNorm statistics and the first-step gradients of every parameter compared.  Without
torch these tests skip, saying so; the zoo's shapes and names are checked without it."""
import numpy as np
import pytest

import fjit
from fjit import models, nn
from model_checks import compare_with_torch as _compare


def _rng(seed=0):
    return np.random.default_rng(seed)


def _flat_names(tree, prefix=""):
    out = []
    for k, v in tree.items():
        name = f"{prefix}.{k}" if prefix else k
        out += _flat_names(v, name) if isinstance(v, dict) else [name]
    return out


def test_the_zoo_has_pytorchs_parameter_counts_and_names_without_torch():
    """Parameter counts as torchvision and PyTorch's DCGAN example report them."""
    key = fjit.random.PRNGKey(0)
    counts = {"resnet18": (models.resnet18(), 11_689_512),
              "resnet34": (models.resnet34(), 21_797_672),
              "resnet50": (models.resnet50(), 25_557_032),
              "cifar": (models.resnet18(10, stem="cifar"), 11_173_962),
              "G": (models.DCGANGenerator(), 3_576_704),
              "D": (models.DCGANDiscriminator(), 2_765_568),
              "lenet": (models.LeNet5(), 61_706)}
    for name, (model, want) in counts.items():
        shapes = fjit.eval_shape(model.init, key)
        assert sum(int(np.prod(s.shape)) for s in fjit.tree_util.tree_leaves(shapes)) == want, \
            name
    names = _flat_names(fjit.eval_shape(models.resnet50().init, key))
    assert "layer1.0.downsample.0.weight" in names and "layer4.2.bn3.bias" in names
    state = _flat_names(models.resnet18().init_state())
    assert "layer2.0.downsample.1.num_batches_tracked" in state and "bn1.running_var" in state


@pytest.fixture
def torch_models():
    pytest.importorskip("torch", reason="the zoo is checked against PyTorch's models")
    import torch
    import torch_reference_models
    torch.manual_seed(0)
    return torch_reference_models


def test_lenet5_matches_pytorch(torch_models):
    x = _rng().standard_normal((4, 1, 28, 28)).astype(np.float32)
    _compare(models.LeNet5(), torch_models.LeNet5(), [x])


def test_mlp_matches_pytorch(torch_models):
    x = _rng().standard_normal((8, 20)).astype(np.float32)
    _compare(models.MLP(20, [32, 16, 5]), torch_models.mlp(20, [32, 16, 5]), [x], train=False)


@pytest.mark.parametrize("depth,stem,size", [(18, "cifar", 32), (34, "imagenet", 64),
                                             (50, "imagenet", 64)])
def test_resnets_match_torchvisions_layout(torch_models, backend, depth, stem, size):
    if backend != "reference" and depth != 18:
        pytest.skip("the compiled backends run ResNet-18; 34 and 50 repeat its layers and "
                    "take a minute more to build on CI's two cores")
    x = _rng().standard_normal((2, 3, size, size)).astype(np.float32)
    fmodel = getattr(models, f"resnet{depth}")(10, stem=stem)
    tmodel = torch_models.resnet(depth, 10, stem)
    _compare(fmodel, tmodel, [x], train=True)


def test_resnet_evaluates_on_running_statistics(torch_models, backend):
    if backend != "reference":
        pytest.skip("evaluation reuses the layers the training test compiles; run once")
    torch = pytest.importorskip("torch")
    tmodel = torch_models.resnet(18, 10, "cifar")
    with torch.no_grad():
        for m in tmodel.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    x = _rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    _compare(models.resnet18(10, stem="cifar"), tmodel, [x], train=False)


def test_dcgan_generator_and_discriminator_match_pytorchs_example(torch_models):
    z = _rng().standard_normal((2, 16, 1, 1)).astype(np.float32)
    _compare(models.DCGANGenerator(nz=16, ngf=8), torch_models.DCGANGenerator(16, 8), [z])
    images = _rng(2).uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    _compare(models.DCGANDiscriminator(ndf=8), torch_models.DCGANDiscriminator(8), [images])


def test_gpt_matches_a_nanogpt_style_model(torch_models):
    ids = _rng().integers(0, 50, (2, 12)).astype(np.int32)
    fmodel = models.GPT(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32)
    tmodel = torch_models.GPT(50, 16, 2, 4, 32)
    _compare(fmodel, tmodel, [ids], train=False)


def test_gpt_is_causal_and_rejects_long_inputs():
    model = models.GPT(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16)
    params = model.init(fjit.random.PRNGKey(0))
    ids = np.arange(8, dtype=np.int32)[None] % 20
    changed = ids.copy()
    changed[0, 5:] = 19
    a, b = model.apply(params, ids), model.apply(params, changed)
    np.testing.assert_allclose(np.asarray(a)[0, :5], np.asarray(b)[0, :5], rtol=1e-5,
                               atol=1e-6)
    assert not np.allclose(np.asarray(a)[0, 5:], np.asarray(b)[0, 5:])
    with pytest.raises(TypeError, match="block_size 8"):
        model.apply(params, np.zeros((1, 9), np.int32))


def test_a_models_params_and_state_round_trip_through_fjits_safe_checkpoints(tmp_path):
    model = models.resnet18(10, stem="cifar")
    params, state = model.init(fjit.random.PRNGKey(3)), model.init_state()
    fjit.save(tmp_path / "ckpt.npz", {"params": params, "state": state})
    loaded = fjit.load(tmp_path / "ckpt.npz")
    assert fjit.tree_util.tree_structure(loaded) == fjit.tree_util.tree_structure(
        {"params": params, "state": state})
    before = nn.to_torch_state_dict(model, params, state)
    after = nn.to_torch_state_dict(model, loaded["params"], loaded["state"])
    assert list(before) == list(after)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)
        assert before[name].dtype == after[name].dtype
