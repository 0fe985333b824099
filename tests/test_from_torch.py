"""nn.from_torch: PyTorch models converted through torch.fx, checked against PyTorch
(outputs, BatchNorm statistics, every parameter's gradient); what cannot be converted is an
error naming the op and its source line.  Needs torch: skipped, saying so, without it."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="from_torch converts PyTorch models")
F = torch.nn.functional

import fjit  # noqa: E402
from fjit import nn  # noqa: E402
from model_checks import compare_with_torch  # noqa: E402
import torch_reference_models as T  # noqa: E402


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class Residual(torch.nn.Module):
    """A user's model: a residual connection, its own parameter, functional calls, methods."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 3, 3, padding=1, bias=False)
        self.gain = torch.nn.Parameter(torch.full((1, 3, 1, 1), 0.5))
        self.head = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.GELU(),
                                        torch.nn.Dropout(0.0), torch.nn.Linear(16, 5))

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        y = x + self.gain * self.conv2(y)
        y = F.adaptive_avg_pool2d(y, (2, 2)).flatten(1)
        return F.log_softmax(self.head(y), dim=-1)


def _converted(tmodel):
    model, params, state = nn.from_torch(tmodel)
    return model, (params, state)


@pytest.mark.parametrize("train", [True, False])
def test_a_user_model_with_a_residual_connection(train):
    torch.manual_seed(0)
    tmodel = Residual()
    model, loaded = _converted(tmodel)
    compare_with_torch(model, tmodel, [_x(2, 3, 8, 8)], train=train, loaded=loaded)


def test_torchvisions_resnet18(backend):
    """torchvision's resnet18 where torchvision imports; otherwise the same layout built in
    torch_reference_models (this machine's torchvision wheel does not load beside torch)."""
    if backend != "reference":
        pytest.skip("the zoo's ResNet-18 test compiles these layers; converted, run once")
    torch.manual_seed(0)
    tmodel = T.resnet(18, 10, "imagenet")
    model, loaded = _converted(tmodel)
    assert "self.layer4.1.bn2(" in model.code
    compare_with_torch(model, tmodel, [_x(2, 3, 32, 32)], train=True, loaded=loaded)


class Attention(torch.nn.Module):
    """Methods and functions an attention block uses: split, view, transpose, masked_fill,
    scaled_dot_product_attention, layer_norm, chunk, contiguous, size."""

    def __init__(self, e=16, h=4):
        super().__init__()
        self.h = h
        self.qkv = torch.nn.Linear(e, 3 * e)
        self.ln = torch.nn.LayerNorm(e)
        self.proj = torch.nn.Linear(e, e)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.qkv(self.ln(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        a, b = self.proj(y).chunk(2, dim=-1)
        return x + torch.cat([a * torch.sigmoid(b), b.masked_fill(b > 1.0, 1.0)], dim=-1)


def test_attention_functions_and_tensor_methods():
    torch.manual_seed(0)
    tmodel = Attention()
    model, loaded = _converted(tmodel)
    compare_with_torch(model, tmodel, [_x(2, 6, 16)], train=False, loaded=loaded)


def test_the_converted_model_jits_and_runs_without_torch_objects():
    torch.manual_seed(0)
    tmodel = Residual().eval()
    model, params, state = nn.from_torch(tmodel)
    x = _x(3, 3, 8, 8, seed=4)
    step = fjit.jit(lambda p, s, x: model.apply(p, x, state=s)[0])
    np.testing.assert_allclose(np.asarray(step(params, state, x)),
                               tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)
    assert not any("torch" in type(v).__module__ for step_ in model._steps
                   for v in (step_.fn, *step_.args) if v is not None and callable(v))


class Unsupported(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(4, 4)
        self.pad = torch.nn.Conv1d(4, 4, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        y = self.pad(x)
        return torch.cumsum(y, 1) + torch.fft.fft(y).real


def test_what_cannot_be_converted_is_listed_with_source_lines():
    with pytest.raises(nn.ConversionError) as info:
        nn.from_torch(Unsupported())
    message = str(info.value)
    assert "4 problems" in message
    assert "torch.nn.GRU at 'rnn': no fjit layer counterpart" in message
    assert "padding_mode='reflect' is not supported" in message
    assert "test_from_torch.py:" in message and "y = self.pad(x)" in message
    assert "torch.cumsum (at " in message and "return torch.cumsum(y, 1)" in message
    assert "fft" in message


class DataDependent(torch.nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x


def test_control_flow_on_tensor_values_is_a_clear_error():
    with pytest.raises(nn.ConversionError, match="could not trace DataDependent.*concrete_args"):
        nn.from_torch(DataDependent())
    with pytest.raises(nn.ConversionError, match="expected a torch.nn.Module"):
        nn.from_torch(lambda x: x)


def test_a_single_layer_and_pytorch_containers_convert():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    model, params, _ = nn.from_torch(layer)
    assert isinstance(model, nn.Linear)
    x = _x(4, 3)
    np.testing.assert_allclose(np.asarray(model.apply(params, x)),
                               layer(torch.from_numpy(x)).detach().numpy(), rtol=1e-5)
    seq = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.LeakyReLU(0.2),
                              torch.nn.Upsample(scale_factor=2, mode="bilinear"),
                              torch.nn.MaxPool2d(2), torch.nn.Flatten())
    model, loaded = _converted(seq)
    compare_with_torch(model, seq, [_x(2, 1, 6, 6)], train=False, loaded=loaded)


def test_a_converted_model_traces_to_the_same_program_as_the_zoos():
    """Converting costs nothing at run time: the converted ResNet-18's training forward is
    the same sequence of primitives as fjit.models.resnet18's."""
    from fjit import models
    torch.manual_seed(0)
    tmodel = T.resnet(18, 10, "cifar")
    converted, p1, s1 = nn.from_torch(tmodel)
    zoo = models.resnet18(10, stem="cifar")
    p2, s2 = nn.load_torch_state_dict(zoo, tmodel.state_dict())
    x = np.zeros((2, 3, 32, 32), np.float32)
    primitives = []
    for model, p, s in ((converted, p1, s1), (zoo, p2, s2)):
        program = fjit.make_jaxpr(lambda p, s, x: model.apply(p, x, state=s, train=True))(
            p, s, x)
        primitives.append([str(e.primitive) for e in program.eqns])
    assert len(primitives[0]) > 100 and primitives[0] == primitives[1]


class ScaledConv(torch.nn.Conv2d):
    """A user's subclass of a PyTorch layer: traced through, its weight used by F.conv2d in
    PyTorch's layout."""

    def forward(self, x):
        return 2.0 * super().forward(x)


def test_single_layers_and_user_subclasses_of_layers():
    torch.manual_seed(0)
    x = _x(2, 2, 5, 5)
    for tmodel in (torch.nn.Conv2d(2, 3, 3, stride=2, padding=1), ScaledConv(2, 3, 3)):
        model, params, _ = nn.from_torch(tmodel)
        np.testing.assert_allclose(np.asarray(model.apply(params, x)),
                                   tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                                   atol=1e-6)
    with pytest.raises(nn.ConversionError, match="torch.nn.GRU at 'the model'"):
        nn.from_torch(torch.nn.GRU(3, 3))


class Methods(torch.nn.Module):
    """Calls whose PyTorch conventions are easy to get wrong."""

    def forward(self, x):
        a = (x * 2.7).to(torch.int32)
        b = x.to(torch.float16).to(x)
        v = torch.max(x, 1, keepdim=True).values + torch.min(x, other=x * 0.5)
        d = torch.div(x * 7, 2, rounding_mode="floor") + torch.div(x * 7, 2,
                                                                   rounding_mode="trunc")
        s = F.softmax(x.unsqueeze(0), dim=None)     # PyTorch's implicit dim: 0 for 3-d
        p = F.adaptive_max_pool1d(x.unsqueeze(0), 2) + F.avg_pool1d(x.unsqueeze(0), 2).sum()
        q = torch.split(x, 1, dim=1)[0].sum().squeeze(0)
        return a, b, v, d, s, p, q


def test_pytorch_conventions_of_dtypes_extrema_division_and_implicit_dims():
    import warnings
    model, params, _ = nn.from_torch(Methods())
    x = np.array([[1., -1., 0.3, 2.], [0.5, 0.2, -3, 1]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # PyTorch's deprecation of the implicit dim
        want = Methods()(torch.from_numpy(x))
    for k, (got, w) in enumerate(zip(model.apply(params, x), want)):
        got, w = np.asarray(got), w.numpy()
        assert got.dtype == w.dtype and got.shape == w.shape, k
        np.testing.assert_allclose(got.astype(np.float64), w.astype(np.float64), atol=1e-3,
                                   err_msg=str(k))


def test_tied_weights_are_refused_by_name():
    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    with pytest.raises(nn.ConversionError, match=r"0.weight = 1.weight"):
        nn.from_torch(torch.nn.Sequential(emb, head))
