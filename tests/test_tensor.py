"""Tests for causal_attention.tensor: every operation on random shapes (values against NumPy,
gradients against central differences of the NumPy function), the deep graph, accumulation,
backward() twice, no_grad, gradcheck itself, and bad inputs."""
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from causal_attention.tensor import Tensor, concat, gradcheck, is_grad_enabled, no_grad, unbroadcast

FAST = settings(max_examples=30, deadline=None)
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3)


def uniform(seed, shape, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def numeric_gradients(numpy_fn, arrays, weights, eps=1e-6):
    "Central differences of sum(weights * numpy_fn(*arrays)) for each array, in float64."
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            saved = a[i]
            a[i] = saved + eps; plus = (numpy_fn(*arrays) * weights).sum()
            a[i] = saved - eps; minus = (numpy_fn(*arrays) * weights).sum()
            a[i] = saved
            g[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def check_op(tensor_fn, numpy_fn, *arrays, seed=0):
    """The Tensor op agrees with NumPy in value (float32) and its gradient agrees with central
    differences of the NumPy function (float64) and with gradcheck."""
    tensors32 = [Tensor(a) for a in arrays]
    out32 = tensor_fn(*tensors32)
    assert out32.dtype == np.float32
    expected = numpy_fn(*[np.asarray(a, dtype=np.float32) for a in arrays])
    assert out32.shape == np.shape(expected)
    np.testing.assert_allclose(out32.data, expected, rtol=1e-5, atol=1e-5)

    tensors = [Tensor(a, dtype=np.float64) for a in arrays]
    out = tensor_fn(*tensors)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(weights)
    for k, (t, g) in enumerate(zip(tensors, numeric_gradients(numpy_fn, arrays, weights))):
        grad = np.zeros(t.shape) if t.grad is None else t.grad
        np.testing.assert_allclose(grad, g, rtol=1e-5, atol=1e-6, err_msg=f"gradient of input {k}")
    assert gradcheck(tensor_fn, *[Tensor(a) for a in arrays])


# ------------------------------------------------------------------ elementwise, with broadcasting
BINARY = {
    "add": (lambda x, y: x + y, np.add),
    "sub": (lambda x, y: x - y, np.subtract),
    "mul": (lambda x, y: x * y, np.multiply),
    "div": (lambda x, y: x / y, np.divide),
    "mixed": (lambda x, y: (x - y) * x / (y * y), lambda x, y: (x - y) * x / (y * y)),
}


@pytest.mark.parametrize("name", BINARY)
@FAST
@given(pair=pairs, seed=seeds)
def test_binary_ops_broadcast(name, pair, seed):
    (shape_x, shape_y), _ = pair
    x = uniform(seed, shape_x)
    y = uniform(seed + 1, shape_y, 0.5, 2.0) * np.where(uniform(seed + 2, shape_y) > 0, 1, -1)  # |y| >= 0.5
    check_op(*BINARY[name], x, y, seed=seed)


@FAST
@given(shape=shapes, seed=seeds, number=st.floats(0.5, 3.0))
def test_numbers_and_arrays_mix_in(shape, seed, number):
    x = uniform(seed, shape, 0.5, 2.0)
    array = uniform(seed + 1, shape)  # float64: must not promote the float32 result
    check_op(lambda t: number - t, lambda a: number - a, x)
    check_op(lambda t: number / t, lambda a: number / a, x)
    check_op(lambda t: array * t + number, lambda a: array * a + number, x)
    check_op(lambda t: t * array - array, lambda a: a * array - array, x)


UNARY = {
    "neg": (lambda x: -x, np.negative, False),
    "exp": (lambda x: x.exp(), np.exp, False),
    "log": (lambda x: x.log(), np.log, True),
    "pow2": (lambda x: x ** 2, lambda a: a ** 2, False),
    "pow3": (lambda x: x ** 3, lambda a: a ** 3, False),
    "sqrt": (lambda x: x ** 0.5, np.sqrt, True),
    "rsqrt": (lambda x: x ** -0.5, lambda a: a ** -0.5, True),
    "reciprocal": (lambda x: x ** -1, lambda a: 1 / a, True),
    "pow1.5": (lambda x: x ** 1.5, lambda a: a ** 1.5, True),
    "pow0": (lambda x: x ** 0, np.ones_like, True),
}


@pytest.mark.parametrize("name", UNARY)
@FAST
@given(shape=shapes, seed=seeds)
def test_unary_ops(name, shape, seed):
    tensor_fn, numpy_fn, positive = UNARY[name]
    x = uniform(seed, shape, 0.5, 2.0) if positive else uniform(seed, shape)
    check_op(tensor_fn, numpy_fn, x, seed=seed)


@FAST
@given(shape=shapes, seed=seeds, value=st.sampled_from([0.0, -3.0, 7.5]), data=st.data())
def test_masked_fill(shape, seed, value, data):
    # a mask that broadcasts to the tensor: some leading axes dropped, some axes of size 1
    drop = data.draw(st.integers(0, len(shape)))
    mask_shape = tuple(1 if data.draw(st.booleans()) else n for n in shape[drop:])
    mask = uniform(seed + 1, mask_shape) > 0
    check_op(lambda x: x.masked_fill(mask, value), lambda a: np.where(mask, value, a), uniform(seed, shape), seed=seed)


# ------------------------------------------------------------------ matrix multiplication
@FAST
@given(batches=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=1, max_side=3),
       n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3), seed=seeds)
def test_matmul_batched(batches, n, k, m, seed):
    (batch_a, batch_b), _ = batches
    a, b = uniform(seed, batch_a + (n, k)), uniform(seed + 1, batch_b + (k, m))
    check_op(lambda x, y: x @ y, np.matmul, a, b, seed=seed)


@FAST
@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3), k=st.integers(1, 4),
       m=st.integers(1, 3), seed=seeds)
def test_matmul_vectors(batch, k, m, seed):
    vector, matrix = uniform(seed, (k,)), uniform(seed + 1, batch + (k, m))
    check_op(lambda v, w: v @ w, np.matmul, vector, matrix, seed=seed)                          # (k,) @ (..., k, m)
    check_op(lambda w, v: w @ v, np.matmul, np.swapaxes(matrix, -1, -2), vector, seed=seed)     # (..., m, k) @ (k,)
    check_op(lambda v, u: v @ u, np.matmul, vector, uniform(seed + 2, (k,)), seed=seed)         # (k,) @ (k,) -> ()
    weight = uniform(seed + 3, (k, m))                                                           # NumPy operands
    check_op(lambda x: x @ weight, lambda x: x @ weight, uniform(seed + 4, batch + (2, k)), seed=seed)
    check_op(lambda x: weight.T @ x, lambda x: weight.T @ x, uniform(seed + 5, batch + (k, 2)), seed=seed)


# ------------------------------------------------------------------ reductions
@st.composite
def shape_and_axis(draw):
    shape = draw(shapes)
    ndim = len(shape)
    choice = draw(st.sampled_from(["none", "int", "tuple"])) if ndim else "none"
    if choice == "none": return shape, None
    if choice == "int": return shape, draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return shape, tuple(a - ndim if draw(st.booleans()) else a for a in axes)  # some negative


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@FAST
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_reductions(name, shape_axis, keepdims, seed):
    shape, axis = shape_axis
    check_op(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims),
             lambda a: getattr(np, name)(a, axis=axis, keepdims=keepdims), uniform(seed, shape), seed=seed)


def test_max_ties_share_the_gradient():
    x = Tensor([[1.0, 5.0, 5.0], [2.0, 2.0, 2.0]])
    x.max(axis=1).backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


# ------------------------------------------------------------------ shape changes
@FAST
@given(shape=shapes, seed=seeds, data=st.data())
def test_reshape_transpose_swapaxes(shape, seed, data):
    x = uniform(seed, shape)
    new_shape = tuple(reversed(shape)) + (1,)
    check_op(lambda t: t.reshape(new_shape), lambda a: a.reshape(new_shape), x, seed=seed)
    check_op(lambda t: t.reshape(-1), lambda a: a.reshape(-1), x, seed=seed)
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    check_op(lambda t: t.transpose(*axes), lambda a: a.transpose(axes), x, seed=seed)
    check_op(lambda t: t.transpose(axes), lambda a: a.transpose(axes), x, seed=seed)
    check_op(lambda t: t.T, lambda a: a.T, x, seed=seed)
    if shape:
        i, j = data.draw(st.integers(-len(shape), len(shape) - 1)), data.draw(st.integers(0, len(shape) - 1))
        check_op(lambda t: t.swapaxes(i, j), lambda a: np.swapaxes(a, i, j), x, seed=seed)


# ------------------------------------------------------------------ indexing and concat
@FAST
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds, data=st.data())
def test_getitem(shape, seed, data):
    x = uniform(seed, shape)
    basic = data.draw(hnp.basic_indices(shape, allow_newaxis=True))
    check_op(lambda t: t[basic], lambda a: a[basic], x, seed=seed)
    rows = np.array(data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=5)))  # repeats
    check_op(lambda t: t[rows], lambda a: a[rows], x, seed=seed)
    mask = uniform(seed + 1, shape) > 0
    check_op(lambda t: t[mask], lambda a: a[mask], x, seed=seed)


@FAST
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
       sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3), seed=seeds, data=st.data())
def test_concat(shape, sizes, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    arrays = []
    for i, size in enumerate(sizes):
        piece = list(shape); piece[axis] = size
        arrays.append(uniform(seed + i, tuple(piece)))
    check_op(lambda *ts: concat(ts, axis=axis), lambda *arrs: np.concatenate(arrs, axis=axis), *arrays, seed=seed)


# ------------------------------------------------------------------ unbroadcast
@FAST
@given(pair=pairs, seed=seeds)
def test_unbroadcast_is_the_adjoint_of_broadcasting(pair, seed):
    # <g, broadcast(x)> = <unbroadcast(g), x> for every x: the defining property of the backward rule
    (shape, _), out_shape = pair
    g, x = uniform(seed, out_shape), uniform(seed + 1, shape)
    reduced = unbroadcast(g, shape)
    assert reduced.shape == shape
    np.testing.assert_allclose((g * np.broadcast_to(x, out_shape)).sum(), (reduced * x).sum(), rtol=1e-10, atol=1e-10)


def test_unbroadcast_examples():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1))
    np.testing.assert_array_equal(unbroadcast(g, (1, 1, 1)), [[[g.sum()]]])
    assert unbroadcast(g, (2, 3, 4)) is g


# ------------------------------------------------------------------ the graph
def test_deep_chain_of_10000_ops():
    x = Tensor(0.5, dtype=np.float64)
    y = x
    for i in range(10_000): y = (y * 1.0001) if i % 2 else (y + 0.001)
    assert sys.getrecursionlimit() < 10_000
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001 ** 5_000, rtol=1e-12)
    np.testing.assert_allclose(y.data, _chain_value(0.5), rtol=1e-12)


def _chain_value(v):
    for i in range(10_000): v = v * 1.0001 if i % 2 else v + 0.001
    return v


def test_deep_chain_float32_tensor():
    x = Tensor(np.ones(3))
    y = x
    for _ in range(10_000): y = y + x * 0.0001  # x used 10,001 times
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 2.0), rtol=1e-3)


def test_diamond_graph_runs_each_rule_once():
    x = Tensor([1.0, 2.0])
    a = x * 3.0
    b, c = a * a, a + 1.0  # a feeds two nodes
    (b * c).backward()     # d/dx (9x^2 (3x + 1)) = 81x^2 + 18x
    np.testing.assert_allclose(x.grad, 81 * x.data ** 2 + 18 * x.data, rtol=1e-6)


def test_gradients_accumulate_within_one_graph():
    x = Tensor([1.0, -2.0, 3.0])
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data)
    x = Tensor([1.0, -2.0, 3.0])
    (x + x + x).backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])
    x = Tensor([1.0, -2.0, 3.0])
    (x * x * x).backward()
    np.testing.assert_allclose(x.grad, 3 * x.data ** 2)


def test_first_gradient_is_never_shared_between_tensors():
    # `+` sends the same out.grad to both children: each must get its own array
    a, b = Tensor([1.0, 2.0]), Tensor([3.0, 4.0])
    y = a + b
    y.backward(np.array([1.0, 1.0], dtype=np.float32))
    assert not np.shares_memory(a.grad, b.grad) and not np.shares_memory(a.grad, y.grad)
    a.grad *= 5.0                                        # changing one gradient leaves the others
    np.testing.assert_array_equal(b.grad, [1.0, 1.0]); np.testing.assert_array_equal(y.grad, [1.0, 1.0])
    # views (reshape, transpose, sum's broadcast) are copied too, and stay writeable
    x = Tensor(np.ones((2, 3)))
    t = x.T
    z = t.reshape(6).sum()
    z.backward()
    assert x.grad.flags.writeable and t.grad.flags.writeable
    assert not np.shares_memory(x.grad, t.grad)


def test_owned_gradients_are_kept_without_a_copy():
    x = Tensor([1.0, 2.0])
    share = np.array([5.0, 6.0], dtype=np.float32)
    x._accumulate(share, owned=True)
    assert x.grad is share                               # handed over
    y = Tensor([1.0, 2.0])
    y._accumulate(share)
    assert y.grad is not share and not np.shares_memory(y.grad, share)   # copied by default
    z = Tensor([1.0, 2.0])
    z._accumulate(np.array([1.0, 2.0]), owned=True)      # float64 share, float32 tensor
    assert z.grad.dtype == np.float32                    # converted, never a float64 gradient
    w = Tensor([1.0, 2.0])
    w._accumulate(share, owned=True); w._accumulate(share, owned=True)
    np.testing.assert_array_equal(w.grad, [10.0, 12.0])  # accumulation still adds


def test_second_backward_raises_and_graph_is_freed():
    x = Tensor([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    assert y._prev == () and y._backward is None
    with pytest.raises(RuntimeError, match="already ran through this graph"):
        y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])  # unchanged by the failed call


def test_backward_through_a_shared_freed_subgraph_raises():
    x = Tensor([1.0, 2.0])
    shared = x * 2.0
    first, second = shared.sum(), (shared * 3.0).sum()
    first.backward()
    with pytest.raises(RuntimeError, match="compute the forward pass again"):
        second.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_leaves_accumulate_across_passes_until_zero_grad():
    x = Tensor([1.0, 2.0])
    for _ in range(3): (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 3 * 2 * x.data)
    x.zero_grad()
    assert x.grad is None
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data)


def test_backward_seed():
    x = Tensor([1.0, 2.0, 3.0])
    (x * 2.0).backward(np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0, 200.0])
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(3,\)"):
        (x * 2.0).backward(np.ones(2))


def test_no_grad():
    x = Tensor([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2.0).exp().sum()
        with no_grad(): pass
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y._prev == ()
    np.testing.assert_allclose(y.data, np.exp(2 * x.data).sum(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        y.backward()
    with pytest.raises(ZeroDivisionError):
        with no_grad(): 1 / 0
    assert is_grad_enabled() and (x * 2.0).requires_grad


def test_constants_and_integers_get_no_gradient():
    x, ids = Tensor([1.0, 2.0]), Tensor(np.array([1, 0]))
    assert not ids.requires_grad and ids.dtype.kind == "i"
    y = x * np.array([3.0, 4.0])
    assert not y._prev[1].requires_grad
    y.backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    gathered = x[ids]  # an integer tensor as an index
    gathered.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 5.0])
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        (ids * 2).backward()


# ------------------------------------------------------------------ data and dtypes
@pytest.mark.parametrize("data,dtype,expected", [
    ([1.0, 2.0], None, np.float32), (np.ones(2), None, np.float32), ([True, False], None, np.float32),
    (3.5, None, np.float32), ([1, 2], None, np.int64), (np.array([1, 2], np.int32), None, np.int32),
    (np.array([1, 2], np.uint8), None, np.uint8), ([1, 2], np.float64, np.float64), (np.ones(2), np.float64, np.float64)])
def test_dtype_rules(data, dtype, expected):
    t = Tensor(data, dtype=dtype)
    assert t.dtype == expected
    assert t.requires_grad == (np.dtype(expected).kind == "f")


def test_float32_is_kept_by_operations_with_float64_constants():
    x = Tensor([1.0, 2.0])
    for y in [x * np.float64(2.0), x + np.ones(2), np.ones(2) - x, x / np.float64(3.0), 2.0 ** 0.5 * x,
              x @ np.ones((2, 2)), np.ones((2, 2)) @ x, x.mean(), x ** 0.5]:
        assert isinstance(y, Tensor) and y.dtype == np.float32, y


def test_detach_item_numpy_repr():
    x = Tensor([[1.0, 2.0]], dtype=np.float64)
    y = (x * 2.0).detach()
    assert y._prev == () and y.requires_grad and y.dtype == np.float64
    assert Tensor(2.5).item() == 2.5 and x.numpy() is x.data and len(x) == 1 and x.size == 2 and x.ndim == 2
    assert repr(x * 2.0) == "Tensor([[2., 4.]], dtype=float64, op='*')"


# ------------------------------------------------------------------ gradcheck itself
def _broken_reverse(x):
    out = Tensor(x.data[::-1], _children=(x,), _op="reverse")
    def _backward(): x._accumulate(out.grad)  # forgets to reverse
    out._backward = _backward
    return out


def test_gradcheck_catches_a_wrong_rule_and_restores_inputs():
    x = Tensor([0.5, -1.0, 2.0])
    data = x.data
    with pytest.raises(AssertionError, match=r"input 0 \(shape \(3,\)\) at index \(0,\): analytic .* vs numeric"):
        gradcheck(_broken_reverse, x)
    assert x.data is data and x.dtype == np.float32 and x.grad is None


def test_gradcheck_names_the_failing_input():
    x, y = Tensor([1.0, 2.0]), Tensor([3.0, 4.0])
    with pytest.raises(AssertionError, match="input 1"):
        gradcheck(lambda a, b: a * 2.0 + _broken_reverse(b), x, y)


def test_gradcheck_bad_arguments():
    with pytest.raises(TypeError, match="input 0 must be a float Tensor"):
        gradcheck(lambda t: t, Tensor([1, 2]))
    with pytest.raises(TypeError, match="input 1 must be a float Tensor"):
        gradcheck(lambda a, b: a, Tensor([1.0]), np.ones(1))
    with pytest.raises(TypeError, match="must return a Tensor, got float"):
        gradcheck(lambda t: 1.0, Tensor([1.0]))


# ------------------------------------------------------------------ bad inputs
def _ones(*shape): return Tensor(np.ones(shape))


BAD = [
    (lambda: Tensor("abc"), TypeError, "got str: 'abc'"),
    (lambda: Tensor(b"abc"), TypeError, "got bytes"),
    (lambda: Tensor(None), TypeError, "got NoneType"),
    (lambda: Tensor([[1.0, 2.0], [3.0]]), ValueError, "rectangular array of numbers.*list"),
    (lambda: Tensor([1.0, "a"]), TypeError, "got list with dtype <U"),
    (lambda: Tensor(["a"], dtype=np.float32), ValueError, "cannot convert this list"),
    (lambda: Tensor(1 + 2j), TypeError, "got complex"),
    (lambda: Tensor({"a": 1}), TypeError, "got dict with dtype object"),
    (lambda: Tensor(np.array(["x"])), TypeError, "got ndarray with dtype <U1"),
    (lambda: _ones(2, 3) + _ones(4), ValueError, r"cannot add tensors of shapes \(2, 3\) and \(4,\)"),
    (lambda: _ones(2, 3) - _ones(2, 2), ValueError, r"cannot subtract tensors of shapes \(2, 3\) and \(2, 2\)"),
    (lambda: _ones(3) * np.ones(2), ValueError, r"cannot multiply tensors of shapes \(3,\) and \(2,\)"),
    (lambda: _ones(3) / _ones(2), ValueError, r"shapes \(3,\) and \(2,\)"),
    (lambda: _ones(2, 3) @ _ones(4, 5), ValueError, r"cannot matmul shapes \(2, 3\) @ \(4, 5\)"),
    (lambda: _ones(2, 3, 4) @ _ones(5, 4, 1), ValueError, r"\(2, 3, 4\) @ \(5, 4, 1\).*batch"),
    (lambda: _ones(3) @ _ones(4), ValueError, r"\(3,\) @ \(4,\)"),
    (lambda: _ones() @ _ones(3), ValueError, r"\(\) @ \(3,\)"),
    (lambda: _ones(3) ** _ones(3), TypeError, "exponent only, got Tensor"),
    (lambda: _ones(2, 3).reshape(4, 2), ValueError, r"shape \(2, 3\) \(6 elements\) into \(4, 2\)"),
    (lambda: _ones(2, 3).transpose(0, 0), ValueError, "not a permutation"),
    (lambda: _ones(2, 3).sum(axis=2), ValueError, "axis 2 is out of range for a tensor with 2 dimensions"),
    (lambda: _ones(2, 3).mean(axis=(0, -2)), ValueError, "same axis twice"),
    (lambda: _ones(2, 3).max(axis=-3), ValueError, "axis -3"),
    (lambda: _ones(2, 3).masked_fill(np.ones(4, bool), 0.0), ValueError, r"mask of shape \(4,\).*\(2, 3\)"),
    (lambda: concat([_ones(2, 3), _ones(3, 2)]), ValueError, r"cannot concat shapes \[\(2, 3\), \(3, 2\)\] along axis 0"),
    (lambda: concat([]), ValueError, "at least one tensor"),
    (lambda: unbroadcast(np.ones((3, 4)), (2, 4)), ValueError, r"shape \(3, 4\) cannot come from .* \(2, 4\)"),
    (lambda: unbroadcast(np.ones((3,)), (1, 3)), ValueError, r"\(1, 3\)"),
    (lambda: _ones(2)[5], IndexError, "out of bounds"),
]


@pytest.mark.parametrize("make,error,message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input(make, error, message):
    with pytest.raises(error, match=message):
        make()
