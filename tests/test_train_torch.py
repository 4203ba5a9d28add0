"""PyTorch as an extra oracle for causal_attention.train: cross-entropy, SGD and AdamW.

Skipped when PyTorch is not installed.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from causal_attention.tensor import Tensor
from causal_attention.train import SGD, AdamW, cross_entropy


@pytest.mark.parametrize("shape", [(7,), (4, 7), (2, 3, 7)])
def test_cross_entropy_against_torch(shape):
    rng = np.random.default_rng(0)
    z = rng.standard_normal(shape) * 3
    y = rng.integers(0, shape[-1], shape[:-1])
    upstream = 1.7
    ours = Tensor(z, dtype=np.float64)
    loss = cross_entropy(ours, y)
    loss.backward(np.array(upstream))
    theirs = torch.tensor(z, requires_grad=True)
    reference = torch.nn.functional.cross_entropy(theirs.reshape(-1, shape[-1]), torch.tensor(y).reshape(-1))
    reference.backward(torch.tensor(upstream, dtype=torch.float64))
    np.testing.assert_allclose(loss.item(), reference.item(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)


def run_both(make_ours, make_theirs, n_steps=6, seed=0):
    "Apply the same random gradients to the same parameters with both optimizers; return both results."
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(n_steps)]
    ours = [Tensor(a.copy()) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    optimizer, reference = make_ours(ours), make_theirs(theirs)
    for step_grads in grads:
        for p, q, g in zip(ours, theirs, step_grads):
            p.grad = g.copy()
            q.grad = torch.tensor(g.copy())
        optimizer.step()
        reference.step()
    return [p.data for p in ours], [q.detach().numpy() for q in theirs]


@pytest.mark.parametrize("kwargs", [dict(lr=1e-3), dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
                                    dict(lr=0.2, betas=(0.0, 0.5), weight_decay=0.0)])
def test_adamw_against_torch(kwargs):
    ours, theirs = run_both(lambda ps: AdamW(ps, **kwargs), lambda ps: torch.optim.AdamW(ps, **kwargs))
    for a, b in zip(ours, theirs):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(lr=0.1), dict(lr=0.05, momentum=0.9)])
def test_sgd_against_torch(kwargs):
    ours, theirs = run_both(lambda ps: SGD(ps, **kwargs), lambda ps: torch.optim.SGD(ps, **kwargs))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
