"""PyTorch as an extra oracle: each layer's output and gradients against torch.nn, same weights.

Skipped when PyTorch is not installed. Everything runs in float64 on both sides, so the
comparisons are tight; the upstream gradient is random, so every element of every gradient counts.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from causal_attention.layers import (
    GELU, Dropout, Embedding, LayerNorm, Linear, ReLU, Sequential, Softmax, manual_seed, softmax)
from causal_attention.tensor import Tensor

LEADS = [(), (3,), (2, 4)]   # unbatched, (T,), (B, T)
TOL = dict(rtol=1e-10, atol=1e-12)


def float64(layer):
    "Switch a layer's parameters to float64 in place (the layers keep whatever dtype they hold)."
    for p in layer.parameters(): p.data = p.data.astype(np.float64)
    return layer


def ours(layer, x, upstream):
    "Output and gradients (input first, then parameters) of our layer for upstream gradient `upstream`."
    x = Tensor(x, dtype=np.float64)
    out = layer(x)
    out.backward(upstream)
    return out.data, [x.grad] + [p.grad for p in layer.parameters()]


def theirs(module, x, upstream, parameters=()):
    "The same for a torch module; `parameters` in the same order as ours."
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = module(x)
    out.backward(torch.tensor(upstream))
    return out.detach().numpy(), [x.grad.numpy()] + [p.grad.numpy() for p in parameters]


def compare(layer, module, x, parameters=(), seed=0):
    upstream = np.random.default_rng(seed).standard_normal(layer(Tensor(x, dtype=np.float64)).shape)
    out_a, grads_a = ours(layer, x, upstream)
    out_b, grads_b = theirs(module, x, upstream, parameters)
    np.testing.assert_allclose(out_a, out_b, **TOL)
    assert len(grads_a) == len(grads_b)
    for a, b in zip(grads_a, grads_b): np.testing.assert_allclose(a, b, **TOL)


def data(lead, size, seed=0, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(lead + (size,))


@pytest.mark.parametrize("lead", LEADS)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(lead, bias):
    manual_seed(0)
    layer = float64(Linear(5, 3, bias))
    module = torch.nn.Linear(5, 3, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(layer.weight.data))   # the same (out_size, in_size) layout
        if bias: module.bias.copy_(torch.tensor(layer.bias.data))
    compare(layer, module, data(lead, 5), list(module.parameters()))


@pytest.mark.parametrize("ids_shape", [(), (6,), (2, 5)])
def test_embedding(ids_shape):
    manual_seed(0)
    layer = float64(Embedding(7, 4))
    module = torch.nn.Embedding(7, 4, dtype=torch.float64)
    with torch.no_grad(): module.weight.copy_(torch.tensor(layer.weight.data))
    ids = np.random.default_rng(0).integers(0, 4, size=ids_shape)   # repeated ids
    upstream = np.random.default_rng(1).standard_normal(ids_shape + (4,))
    out = layer(ids); out.backward(upstream)
    expected = module(torch.tensor(ids)); expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **TOL)
    np.testing.assert_allclose(layer.weight.grad, module.weight.grad.numpy(), **TOL)


@pytest.mark.parametrize("lead", LEADS)
def test_layernorm(lead):
    rng = np.random.default_rng(2)
    layer = float64(LayerNorm(6))
    layer.weight.data[:] = rng.standard_normal(6)
    layer.bias.data[:] = rng.standard_normal(6)
    module = torch.nn.LayerNorm(6, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(layer.weight.data)); module.bias.copy_(torch.tensor(layer.bias.data))
    compare(layer, module, data(lead, 6, scale=3.0) + 1.0, [module.weight, module.bias])


@pytest.mark.parametrize("lead", LEADS)
def test_gelu_tanh(lead):
    compare(GELU(), torch.nn.GELU(approximate='tanh'), data(lead, 7, scale=3.0))


@pytest.mark.parametrize("lead", LEADS)
def test_relu(lead):
    compare(ReLU(), torch.nn.ReLU(), data(lead, 7))


@pytest.mark.parametrize("lead,axis", [((), -1), ((3,), -1), ((3,), 0), ((2, 4), 1), ((2, 4), -1)])
def test_softmax(lead, axis):
    x = data(lead, 5, scale=4.0)
    compare(Softmax(axis), torch.nn.Softmax(dim=axis), x)
    np.testing.assert_allclose(softmax(Tensor(x, dtype=np.float64), axis).data, torch.softmax(torch.tensor(x), dim=axis).numpy(), **TOL)


def test_softmax_large_scores():
    x = np.array([[1000.0, 1001.0, 1002.0], [-50.0, 0.0, 700.0]])
    np.testing.assert_allclose(softmax(Tensor(x, dtype=np.float64)).data, torch.softmax(torch.tensor(x), dim=-1).numpy(), **TOL)


def test_dropout_scaling_matches_torch():
    "Masks differ (different generators), but both keep survivors scaled by 1/(1-p) and are identity in eval."
    x = np.random.default_rng(0).uniform(1, 2, 10_000)
    manual_seed(0)
    ours_out = Dropout(0.2)(Tensor(x, dtype=np.float64)).data
    torch.manual_seed(0)
    theirs_out = torch.nn.Dropout(0.2)(torch.tensor(x)).numpy()
    for out in (ours_out, theirs_out):
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / 0.8, **TOL)
    eval_ours = Dropout(0.2).eval()(Tensor(x, dtype=np.float64)).data
    np.testing.assert_array_equal(eval_ours, torch.nn.Dropout(0.2).eval()(torch.tensor(x)).numpy())


@pytest.mark.parametrize("lead", LEADS)
def test_sequential_mlp(lead):
    manual_seed(0)
    mlp = float64(Sequential(Linear(4, 8), GELU(), LayerNorm(8), Linear(8, 3), Softmax()))
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(approximate='tanh'), torch.nn.LayerNorm(8),
                                 torch.nn.Linear(8, 3), torch.nn.Softmax(dim=-1)).double()
    with torch.no_grad():
        for ours_p, theirs_p in zip(mlp.parameters(), module.parameters(), strict=True):
            theirs_p.copy_(torch.tensor(ours_p.data))
    compare(mlp, module, data(lead, 4), list(module.parameters()))
