"""PyTorch as an extra oracle for causal_attention.tensor: the same expressions, the same values and gradients."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from causal_attention.tensor import Tensor, concat  # noqa: E402

rng = np.random.default_rng(7)


def compare(ours, theirs, *arrays):
    "Run `ours` on Tensors and `theirs` on torch tensors (float64); compare outputs and input gradients."
    tensors = [Tensor(a, dtype=np.float64) for a in arrays]
    torch_tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, torch_out = ours(*tensors), theirs(*torch_tensors)
    np.testing.assert_allclose(out.data, torch_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = rng.standard_normal(out.shape)
    out.backward(weights)
    torch_out.backward(torch.tensor(weights))
    for k, (t, tt) in enumerate(zip(tensors, torch_tensors)):
        expected = np.zeros(t.shape) if tt.grad is None else tt.grad.numpy()
        np.testing.assert_allclose(t.grad, expected, rtol=1e-10, atol=1e-12, err_msg=f"gradient of input {k}")


def r(*shape, low=-2.0, high=2.0): return rng.uniform(low, high, shape)


BROADCAST = [((3,), (3,)), ((2, 3), (3,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((), (2, 3))]


@pytest.mark.parametrize("shapes", BROADCAST)
def test_arithmetic(shapes):
    x, y = r(*shapes[0]), r(*shapes[1], low=0.5)
    compare(lambda a, b: a + b, lambda a, b: a + b, x, y)
    compare(lambda a, b: a - b * 2.0, lambda a, b: a - b * 2.0, x, y)
    compare(lambda a, b: a * b, lambda a, b: a * b, x, y)
    compare(lambda a, b: a / b - 1.0 / b, lambda a, b: a / b - 1.0 / b, x, y)
    compare(lambda a, b: -(a * a) + b ** 1.5 + b ** -0.5, lambda a, b: -(a * a) + b ** 1.5 + b ** -0.5, x, y)


@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 3, 4)])
def test_exp_log_masked_fill(shape):
    x = r(*shape, low=0.5)
    compare(lambda a: a.exp() + a.log(), lambda a: a.exp() + a.log(), x)
    mask = rng.random(shape) < 0.5
    compare(lambda a: a.masked_fill(mask, -1.0) * a, lambda a: a.masked_fill(torch.tensor(mask), -1.0) * a, x)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 2, 3, 4), (2, 2, 4, 3)),
                                    ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((4,), (2, 4, 3))])
def test_matmul(shapes):
    compare(lambda a, b: a @ b, lambda a, b: a @ b, r(*shapes[0]), r(*shapes[1]))


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(axis, keepdims):
    x = r(2, 3, 4)
    dim = tuple(range(3)) if axis is None else axis
    compare(lambda a: a.sum(axis=axis, keepdims=keepdims), lambda a: a.sum(dim=dim, keepdim=keepdims), x)
    compare(lambda a: a.mean(axis=axis, keepdims=keepdims), lambda a: a.mean(dim=dim, keepdim=keepdims), x)
    compare(lambda a: a.max(axis=axis, keepdims=keepdims), lambda a: a.amax(dim=dim, keepdim=keepdims), x)


def test_max_ties_match_amax():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    compare(lambda a: a.max(axis=-1), lambda a: a.amax(dim=-1), x)
    compare(lambda a: a.max(), lambda a: a.amax(), x)


def test_shape_changes():
    x = r(2, 3, 4)
    compare(lambda a: a.reshape(4, 6), lambda a: a.reshape(4, 6), x)
    compare(lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1), x)
    compare(lambda a: a.swapaxes(0, -1), lambda a: a.transpose(0, -1), x)
    compare(lambda a: a.reshape(6, 4).T, lambda a: a.reshape(6, 4).T, x)
    B, T, C, H = 2, 3, 4, 2
    compare(lambda a: a.reshape(B, T, H, C // H).transpose(0, 2, 1, 3),   # (B, T, C) -> (B, H, T, hs)
            lambda a: a.reshape(B, T, H, C // H).permute(0, 2, 1, 3), x)


def test_indexing_and_concat():
    x = r(3, 4)
    idx = np.array([0, 2, 0, 0])
    compare(lambda a: a[idx], lambda a: a[torch.tensor(idx)], x)
    compare(lambda a: a[1:, ::2], lambda a: a[1:, ::2], x)
    compare(lambda a: a[idx, np.array([1, 1, 3, 1])], lambda a: a[torch.tensor(idx), torch.tensor([1, 1, 3, 1])], x)
    compare(lambda a, b: concat([a, b, a], axis=-1), lambda a, b: torch.cat([a, b, a], dim=-1), x, r(3, 2))


def test_cross_entropy_from_primitives():
    logits, targets = r(5, 4), rng.integers(0, 4, 5)

    def ours(z):
        shifted = z - z.max(axis=-1, keepdims=True)
        log_probs = shifted - shifted.exp().sum(axis=-1, keepdims=True).log()
        return -log_probs[np.arange(5), targets].mean()

    compare(ours, lambda z: torch.nn.functional.cross_entropy(z, torch.tensor(targets)), logits)
