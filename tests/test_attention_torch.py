"""CausalSelfAttention against PyTorch's scaled_dot_product_attention: outputs and every gradient."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from causal_attention.attention import CausalSelfAttention, SelfAttention  # noqa: E402
from causal_attention.layers import manual_seed  # noqa: E402
from causal_attention.tensor import Tensor  # noqa: E402

PROJECTIONS = ("query", "key", "value", "output")


def torch_attention(layer, x, dtype):
    "The same layer in PyTorch, from the same weights; returns output, input leaf and parameter leaves."
    leaf = lambda a: torch.tensor(np.asarray(a), dtype=dtype, requires_grad=True)
    xt = leaf(x)
    params = {name: (leaf(getattr(layer, name).weight.data),
                     leaf(getattr(layer, name).bias.data) if getattr(layer, name).bias is not None else None)
              for name in PROJECTIONS}
    unbatched = xt.ndim == 2
    xb = xt.unsqueeze(0) if unbatched else xt
    B, T, C = xb.shape
    H, hs = layer.n_heads, layer.head_size
    heads = lambda t: t.view(B, T, H, hs).transpose(1, 2)  # (B, H, T, hs)
    q, k, v = (heads(F.linear(xb, *params[name])) for name in ("query", "key", "value"))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=layer.causal)  # (B, H, T, hs)
    y = F.linear(y.transpose(1, 2).reshape(B, T, C), *params["output"])
    return (y[0] if unbatched else y), xt, params


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("shape", [(6, 12), (3, 6, 12), (1, 1, 12), (2, 4, 12)])
@pytest.mark.parametrize("n_heads", [1, 3, 4])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("causal", [True, False])
def test_matches_scaled_dot_product_attention(dtype, tol, shape, n_heads, bias, causal):
    manual_seed(n_heads)
    layer = CausalSelfAttention(12, context_size=8, n_heads=n_heads, bias=bias, causal=causal)
    for p in layer.parameters(): p.data = p.data.astype(dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)  # upstream gradient

    xs = Tensor(x, dtype=dtype)
    ours = layer(xs)
    (ours * g).sum().backward()

    theirs, xt, params = torch_attention(layer, x, torch.float32 if dtype == np.float32 else torch.float64)
    (theirs * torch.tensor(g)).sum().backward()

    assert ours.dtype == dtype
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), atol=tol, rtol=tol)
    np.testing.assert_allclose(xs.grad, xt.grad.numpy(), atol=tol, rtol=tol)
    for name in PROJECTIONS:
        linear = getattr(layer, name)
        weight, bias_t = params[name]
        np.testing.assert_allclose(linear.weight.grad, weight.grad.numpy(), atol=tol, rtol=tol, err_msg=name)
        if bias:
            np.testing.assert_allclose(linear.bias.grad, bias_t.grad.numpy(), atol=tol, rtol=tol, err_msg=name)


def test_weights_match_torch_softmax():
    manual_seed(0)
    layer = CausalSelfAttention(8, context_size=6, n_heads=2)
    x = np.random.default_rng(1).standard_normal((2, 5, 8)).astype(np.float32)
    layer(x)
    xt = torch.tensor(x)
    q, k = (F.linear(xt, torch.tensor(getattr(layer, n).weight.data), torch.tensor(getattr(layer, n).bias.data))
            .view(2, 5, 2, 4).transpose(1, 2) for n in ("query", "key"))
    scores = (q @ k.transpose(-2, -1)) / 2.0
    scores = scores.masked_fill(~torch.ones(5, 5, dtype=torch.bool).tril(), float("-inf"))
    np.testing.assert_allclose(layer.weights, torch.softmax(scores, dim=-1).numpy(), atol=1e-6)


def test_self_attention_matches_torch():
    manual_seed(0)
    layer = SelfAttention(8, head_size=4)
    x = np.random.default_rng(2).standard_normal((2, 5, 8))
    xs = Tensor(x, dtype=np.float64)
    for p in layer.parameters(): p.data = p.data.astype(np.float64)
    ours = layer(xs)
    ours.sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    ws = {n: torch.tensor(getattr(layer, n).weight.data, requires_grad=True) for n in ("query", "key", "value")}
    q, k, v = (xt @ ws[n].T for n in ("query", "key", "value"))
    theirs = F.scaled_dot_product_attention(q, k, v)
    theirs.sum().backward()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(xs.grad, xt.grad.numpy(), atol=1e-12)
    for n in ws: np.testing.assert_allclose(getattr(layer, n).weight.grad, ws[n].grad.numpy(), atol=1e-12)
