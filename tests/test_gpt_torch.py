"""GPT against the same model written with PyTorch's functional API: logits and every parameter gradient."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from causal_attention.gpt import GPT, GPTConfig  # noqa: E402
from causal_attention.layers import manual_seed  # noqa: E402
from causal_attention.tensor import Tensor  # noqa: E402


def torch_gpt(model, ids, dtype):
    "The forward pass of `model` in PyTorch, from the same weights; returns the logits and the parameter leaves."
    params = {name: torch.tensor(p.data, dtype=dtype, requires_grad=True) for name, p in model.named_parameters()}
    c = model.config
    C, H = c.embedding_size, c.n_heads
    idx = torch.as_tensor(ids)
    unbatched = idx.ndim == 1
    if unbatched: idx = idx.unsqueeze(0)
    B, T = idx.shape
    x = F.embedding(idx, params["token_embedding.weight"]) + params["position_embedding.weight"][:T]  # (B, T, C)
    for i in range(c.n_layers):
        P = lambda name: params[f"blocks.{i}.{name}"]
        linear = lambda t, name: F.linear(t, P(f"{name}.weight"), P(f"{name}.bias"))
        h = F.layer_norm(x, (C,), P("norm1.weight"), P("norm1.bias"), eps=1e-5)
        heads = lambda t: t.view(B, T, H, C // H).transpose(1, 2)                       # (B, H, T, hs)
        q, k, v = (heads(linear(h, f"attention.{name}")) for name in ("query", "key", "value"))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)                     # (B, H, T, hs)
        x = x + linear(y.transpose(1, 2).reshape(B, T, C), "attention.output")
        h = F.layer_norm(x, (C,), P("norm2.weight"), P("norm2.bias"), eps=1e-5)
        x = x + linear(F.gelu(linear(h, "feed_forward.expand"), approximate="tanh"), "feed_forward.project")
    x = F.layer_norm(x, (C,), params["norm.weight"], params["norm.bias"], eps=1e-5)
    logits = F.linear(x, params["head.weight"])                                         # (B, T, V)
    return (logits[0] if unbatched else logits), params


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 4), (1, 1)])
@pytest.mark.parametrize("sizes", [(13, 8, 12, 3, 2), (9, 8, 8, 1, 1)])
def test_logits_and_gradients_match_pytorch(dtype, tol, shape, sizes):
    manual_seed(sum(sizes))
    model = GPT(GPTConfig(*sizes))
    for p in model.parameters(): p.data = p.data.astype(dtype)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, sizes[0], size=shape)
    logits = model(ids)
    expected, params = torch_gpt(model, ids, getattr(torch, np.dtype(dtype).name))
    assert logits.dtype == dtype
    np.testing.assert_allclose(logits.data, expected.detach().numpy(), rtol=tol, atol=tol)

    weights = rng.standard_normal(logits.shape).astype(dtype)     # any scalar function of every logit
    (logits * Tensor(weights, dtype=dtype)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, params[name].grad.numpy(), rtol=tol * 10, atol=tol * 10, err_msg=name)
