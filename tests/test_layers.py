"""Tests for causal_attention.layers: gradients on many shapes, the Layer machinery, and bad inputs."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_attention.layers import (
    GELU, Dropout, Embedding, Layer, LayerNorm, Linear, ReLU, Sequential, Softmax, manual_seed, softmax)
from causal_attention.tensor import Tensor, gradcheck

SHAPES = [(), (1,), (3,), (2, 3), (1, 1), (2, 1, 3), (2, 3, 4)]   # leading (batch) axes only
rng = np.random.default_rng(1234)


def random_input(lead, size, seed=0):
    "A float64 Tensor of shape lead + (size,)."
    return Tensor(np.random.default_rng(seed).standard_normal(lead + (size,)))


def check(layer, x):
    "gradcheck `layer` with respect to its input and every parameter."
    return gradcheck(lambda x, *parameters: layer(x), x, *layer.parameters())


# ------------------------------------------------------------------ gradients on many shapes
@pytest.mark.parametrize("lead", SHAPES)
@pytest.mark.parametrize("in_size,out_size,bias", [(1, 1, True), (5, 3, True), (4, 6, False)])
def test_linear_gradcheck(lead, in_size, out_size, bias):
    manual_seed(0)
    assert check(Linear(in_size, out_size, bias), random_input(lead, in_size))


@pytest.mark.parametrize("lead", SHAPES)
@pytest.mark.parametrize("size", [2, 5])
def test_layernorm_gradcheck(lead, size):
    norm = LayerNorm(size)
    norm.weight.data[:] = rng.standard_normal(size)   # a non-trivial weight takes part in dx
    norm.bias.data[:] = rng.standard_normal(size)
    assert check(norm, random_input(lead, size))


@pytest.mark.parametrize("lead", SHAPES)
def test_gelu_gradcheck(lead):
    x = Tensor(3.0 * np.random.default_rng(0).standard_normal(lead + (4,)))   # the curve and the tails
    assert check(GELU(), x)


@pytest.mark.parametrize("lead", SHAPES)
def test_relu_gradcheck(lead):
    data = np.random.default_rng(0).standard_normal(lead + (4,))
    assert check(ReLU(), Tensor(data + 0.1 * np.sign(data)))   # keep away from the kink at 0


@pytest.mark.parametrize("shape,axis", [((5,), -1), ((5,), 0), ((3, 4), 0), ((3, 4), 1),
                                        ((2, 3, 4), -1), ((2, 3, 4), 1), ((2, 3, 4), 0), ((1, 1), -1)])
def test_softmax_gradcheck(shape, axis):
    x = Tensor(np.random.default_rng(0).standard_normal(shape) * 2)
    assert gradcheck(lambda x: softmax(x, axis), x)
    assert gradcheck(Softmax(axis), x)


@pytest.mark.parametrize("ids_shape", [(), (1,), (7,), (3, 4), (2, 2, 3)])
def test_embedding_gradcheck(ids_shape):
    manual_seed(0)
    embedding = Embedding(5, 3)
    ids = np.random.default_rng(0).integers(0, 3, size=ids_shape)   # ids 0..2: repeats, row 3, 4 unused
    assert gradcheck(lambda weight: embedding(ids), embedding.weight)


@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.9])
def test_dropout_gradcheck(lead, p):
    dropout = Dropout(p)
    def fixed_mask(x):
        manual_seed(7)
        return dropout(x)
    assert gradcheck(fixed_mask, random_input(lead, 4))


@pytest.mark.parametrize("lead", SHAPES)
def test_sequential_gradcheck(lead):
    manual_seed(0)
    mlp = Sequential(Linear(3, 4), GELU(), LayerNorm(4), Dropout(0.5), Linear(4, 2), Softmax()).eval()
    assert len(mlp.parameters()) == 6
    assert check(mlp, random_input(lead, 3))


# ------------------------------------------------------------------ forward values
@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=0, max_size=3), st.integers(1, 5), st.integers(1, 5))
def test_linear_matches_numpy(lead, in_size, out_size):
    layer = Linear(in_size, out_size)
    x = np.random.default_rng(len(lead)).standard_normal(tuple(lead) + (in_size,)).astype(np.float32)
    y = layer(x)
    assert y.shape == tuple(lead) + (out_size,) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-5, atol=1e-6)


def test_linear_initialisation_bounds_and_seed():
    manual_seed(3); a = Linear(16, 8)
    manual_seed(3); b = Linear(16, 8)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert np.abs(a.weight.data).max() <= 16 ** -0.5 and np.abs(a.bias.data).max() <= 16 ** -0.5
    assert a.weight.shape == (8, 16) and a.bias.shape == (8,) and a.weight.dtype == np.float32


def test_linear_gradient_is_a_sum_not_a_mean():
    manual_seed(0)
    layer = Linear(3, 2)
    xs = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    def grads(x):
        layer.zero_grad(); layer(x).sum().backward()
        return layer.weight.grad.copy(), layer.bias.grad.copy()
    batch_w, batch_b = grads(xs)
    singles = [grads(x) for x in xs]
    np.testing.assert_allclose(batch_w, sum(w for w, _ in singles), rtol=1e-5)
    np.testing.assert_allclose(batch_b, [4.0, 4.0])   # d sum / d bias: one per example, not averaged


def test_embedding_repeated_ids_accumulate():
    manual_seed(0)
    embedding = Embedding(6, 4)
    g = np.random.default_rng(0).standard_normal(4).astype(np.float32)
    embedding(np.array([1])).backward(g[None])
    once = embedding.weight.grad.copy()
    embedding.zero_grad()
    embedding(np.array([1, 1, 1])).backward(np.stack([g, g, g]))
    np.testing.assert_allclose(embedding.weight.grad, 3 * once, rtol=1e-6)
    np.testing.assert_allclose(embedding.weight.grad[1], 3 * g, rtol=1e-6)
    assert not np.delete(embedding.weight.grad, 1, axis=0).any()


def test_embedding_gradient_adds_into_an_existing_non_contiguous_gradient():
    embedding = Embedding(5, 3)
    ids = np.array([[0, 4, 4], [1, 0, 2]])
    embedding(ids).sum().backward()
    expected = embedding.weight.grad.copy()
    embedding.weight.grad = np.asfortranarray(np.ones((5, 3), dtype=np.float32))   # e.g. set by hand
    embedding(ids).sum().backward()
    np.testing.assert_array_equal(embedding.weight.grad, expected + 1)


def test_tied_embedding_and_head_gradient_is_the_sum_of_both_uses():
    manual_seed(0)
    embedding, head = Embedding(6, 3), Linear(3, 6, bias=False)
    head.weight = embedding.weight
    ids = np.array([[0, 2, 2, 5]])
    upstream = np.random.default_rng(1).standard_normal((1, 4, 6)).astype(np.float32)
    head(embedding(ids)).backward(upstream)
    W = embedding.weight.data
    vectors = W[ids[0]]                                   # (4, 3)
    expected = upstream[0].T @ vectors                    # the head's use: G^T X
    np.add.at(expected, ids[0], upstream[0] @ W)          # the embedding's use: G W, scattered
    np.testing.assert_allclose(embedding.weight.grad, expected, rtol=1e-5, atol=1e-6)


def test_embedding_gradient_counts_each_occurrence():
    embedding = Embedding(5, 2)
    ids = np.array([[0, 3, 3], [3, 4, 0]])
    embedding(ids).sum().backward()
    counts = np.bincount(ids.ravel(), minlength=5)   # expected: each row's gradient = its count
    np.testing.assert_array_equal(embedding.weight.grad, np.repeat(counts[:, None], 2, axis=1))


def test_embedding_accepts_integer_tensors_and_unsigned_ids():
    embedding = Embedding(4, 3)
    np.testing.assert_array_equal(embedding(Tensor([2, 0])).data, embedding.weight.data[[2, 0]])
    assert embedding(np.array([3], dtype=np.uint8)).shape == (1, 3)
    assert embedding(np.zeros((2, 0), dtype=np.int64)).shape == (2, 0, 3)   # no ids, no error


def test_layernorm_normalises_each_vector():
    x = np.random.default_rng(0).standard_normal((3, 7, 16)).astype(np.float32) * 5 + 2
    y = LayerNorm(16)(x).data
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(-1), 1, atol=1e-3)
    assert np.isfinite(LayerNorm(4)(np.ones((2, 4))).data).all()   # constant rows: eps avoids 0/0


def test_softmax_is_stable_and_normalised():
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]], dtype=np.float32)
    y = softmax(x).data
    assert np.isfinite(y).all() and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-6)
    np.testing.assert_allclose(y[0], softmax([0.0, 1.0, 2.0]).data, rtol=1e-6)   # shift invariance


def test_gelu_and_relu_values():
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0], dtype=np.float32)
    np.testing.assert_allclose(ReLU()(x).data, [0, 0, 0, 1, 3])
    from math import erf, sqrt
    exact = np.array([v * 0.5 * (1 + erf(v / sqrt(2))) for v in x])
    np.testing.assert_allclose(GELU()(x).data, exact, atol=1e-3)
    assert GELU()(x).dtype == np.float32


def test_dropout_statistics_eval_and_seed():
    x = Tensor(np.ones(100_000))
    manual_seed(0)
    y = Dropout(0.3)(x).data
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    manual_seed(5); a = Dropout(0.5)(x).data
    manual_seed(5); b = Dropout(0.5)(x).data
    manual_seed(6); c = Dropout(0.5)(x).data
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert Dropout(0.5).eval()(x) is x and Dropout(0.0)(x) is x


# ------------------------------------------------------------------ the Layer machinery
class Holder(Layer):
    def __init__(self, shared):
        self.first, self.second = shared, shared
        self.stack = [Linear(2, 2), shared]
        self.pair = (Dropout(0.2), shared)
        self.scale = Tensor([1.0])
        self.note = "not a parameter"
    def forward(self, x): return self.second(self.first(x))


def test_parameters_found_recursively_each_once():
    shared = Linear(2, 2)
    holder = Holder(shared)
    names = [name for name, _ in holder.named_parameters()]
    assert names == ['first.weight', 'first.bias', 'stack.0.weight', 'stack.0.bias', 'scale']
    assert len({id(p) for p in holder.parameters()}) == len(holder.parameters()) == 5
    outer = Sequential(holder, shared)   # the same tensors through another path: still once each
    assert len(outer.parameters()) == 5
    assert [n for n, _ in outer.named_parameters()][:2] == ['layers.0.first.weight', 'layers.0.first.bias']


def test_shared_layer_gradient_collects_both_uses():
    manual_seed(0)
    shared = Linear(2, 2, bias=False)
    holder = Holder(shared)
    x = Tensor([[1.0, -2.0]])
    holder(x).sum().backward()
    w = shared.weight.data
    np.testing.assert_allclose(shared.weight.grad, np.ones((2, 1)) @ (x.data @ w.T) + (np.ones((1, 2)) @ w).T @ x.data, rtol=1e-5)


def test_zero_grad_train_eval_recurse():
    holder = Holder(Linear(2, 2))
    holder(Tensor([[1.0, 2.0]])).sum().backward()
    assert holder.first.weight.grad is not None
    holder.zero_grad()
    assert all(p.grad is None for p in holder.parameters())
    assert holder.eval() is holder
    assert not holder.training and not holder.stack[0].training and not holder.pair[0].training
    holder.train()
    assert holder.training and holder.pair[0].training
    assert list(holder.children()) == [holder.first, holder.second, *holder.stack, *holder.pair]


def test_repr_is_a_readable_tree():
    manual_seed(0)
    text = repr(Sequential(Linear(3, 4), GELU(), Sequential(Dropout(0.25), LayerNorm(4)), Softmax(0)))
    assert text == ("Sequential(\n"
                    "  (layers.0): Linear(in_size=3, out_size=4, bias=True)\n"
                    "  (layers.1): GELU()\n"
                    "  (layers.2): Sequential(\n"
                    "    (layers.0): Dropout(p=0.25)\n"
                    "    (layers.1): LayerNorm(size=4, eps=1e-05)\n"
                    "  )\n"
                    "  (layers.3): Softmax(axis=0)\n"
                    ")")
    assert repr(Embedding(10, 4)) == "Embedding(vocabulary_size=10, embedding_size=4)"


def test_sequential_indexing_and_order():
    a, b = Linear(2, 3), ReLU()
    seq = Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b
    x = np.array([[0.5, -1.0]], dtype=np.float32)
    np.testing.assert_allclose(seq(x).data, b(a(x)).data)


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("make,name", [
    (lambda v: Linear(v, 2), "in_size"), (lambda v: Linear(2, v), "out_size"),
    (lambda v: Embedding(v, 2), "vocabulary_size"), (lambda v: Embedding(2, v), "embedding_size"),
    (lambda v: LayerNorm(v), "size")])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "4", None])
def test_non_positive_or_non_integer_sizes(make, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be a positive integer, got {re.escape(repr(value))}$"):
        make(value)


@pytest.mark.parametrize("shape", [(4,), (2, 4), (2, 3, 4), ()])
def test_linear_wrong_last_dimension(shape):
    with pytest.raises(ValueError, match=re.escape(f"Linear expects input of shape (..., 3), got {shape}")):
        Linear(3, 2)(np.ones(shape, dtype=np.float32))


@pytest.mark.parametrize("shape", [(4,), (2, 6), ()])
def test_layernorm_wrong_last_dimension(shape):
    with pytest.raises(ValueError, match=re.escape(f"LayerNorm expects input of shape (..., 5), got {shape}")):
        LayerNorm(5)(np.ones(shape, dtype=np.float32))


@pytest.mark.parametrize("eps", [0, -1e-5, float("nan"), "1e-5"])
def test_layernorm_bad_eps(eps):
    with pytest.raises(ValueError, match="eps must be a positive number"):
        LayerNorm(4, eps=eps)


@pytest.mark.parametrize("ids,dtype", [([1.0, 2.0], "float64"), (np.array([1, 2], dtype=np.float32), "float32"),
                                       ([True, False], "bool"), (["a"], "<U1"),
                                       (Tensor([0.0, 1.0]), "float32")])
def test_embedding_non_integer_ids(ids, dtype):
    with pytest.raises(TypeError, match=re.escape(f"Embedding expects integer token ids, got dtype {dtype}")):
        Embedding(5, 2)(ids)


@pytest.mark.parametrize("ids,bad", [([0, 5], 5), ([[1, 2], [7, 0]], 7), ([-1, 2], -1), (np.array(9), 9),
                                     ([-2, 8], -2)])
def test_embedding_out_of_range_ids(ids, bad):
    with pytest.raises(IndexError, match=rf"^token id {bad} is out of range for a vocabulary of size 5$"):
        Embedding(5, 2)(ids)


@pytest.mark.parametrize("p", [1, 1.0, 1.5, -0.1, -1, float("nan"), float("inf")])
def test_dropout_p_outside_range(p):
    with pytest.raises(ValueError, match=re.escape(f"dropout probability p must be in [0, 1), got {p!r}")):
        Dropout(p)


@pytest.mark.parametrize("p", ["0.5", None, True, [0.1]])
def test_dropout_p_not_a_number(p):
    with pytest.raises(TypeError, match=re.escape(f"dropout probability p must be a number, got {type(p).__name__}")):
        Dropout(p)


def test_sequential_rejects_non_layers():
    with pytest.raises(TypeError, match="Sequential expects Layer instances, got function at position 1"):
        Sequential(ReLU(), lambda x: x)


def test_layer_without_forward():
    class NoForward(Layer): pass
    with pytest.raises(NotImplementedError, match="NoForward does not define forward"):
        NoForward()(Tensor([1.0]))
