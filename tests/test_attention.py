"""Tests of causal_attention.attention: gradients, causality, weights, heads, errors, the heatmap helper."""
import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from causal_attention.attention import (CausalSelfAttention, SelfAttention, causal_mask, masked_softmax,
                                        merge_heads, show_attention, split_heads)
from causal_attention.layers import Dropout, manual_seed, softmax
from causal_attention.tensor import Tensor, gradcheck

matplotlib.use("Agg")


def make_layer(C=8, context_size=6, n_heads=2, seed=0, **kwargs):
    manual_seed(seed)
    return CausalSelfAttention(C, context_size=context_size, n_heads=n_heads, **kwargs)


def reference(layer, x):
    "CausalSelfAttention in plain NumPy, one head at a time, for x of shape (T, C)."
    T, hs = len(x), layer.head_size
    def project(linear, rows=slice(None)):
        y = x @ linear.weight.data[rows].T
        return y + linear.bias.data[rows] if linear.bias is not None else y
    outputs, weights = [], []
    for h in range(layer.n_heads):
        rows = slice(h * hs, (h + 1) * hs)
        q, k, v = (project(p, rows) for p in (layer.query, layer.key, layer.value))
        s = q @ k.T / np.sqrt(hs)
        if layer.causal: s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
        w = np.exp(s - s.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        outputs.append(w @ v)
        weights.append(w)
    merged = np.concatenate(outputs, axis=-1)
    y = merged @ layer.output.weight.data.T
    if layer.output.bias is not None: y = y + layer.output.bias.data
    return y, np.stack(weights)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("n_heads", [1, 2, 4])
@pytest.mark.parametrize("shape", [(5, 8), (2, 5, 8), (1, 1, 8), (3, 6, 8)])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_whole_layer(n_heads, shape, bias):
    layer = make_layer(n_heads=n_heads, bias=bias)
    x = Tensor(np.random.default_rng(1).standard_normal(shape))
    assert gradcheck(lambda x, *ps: layer(x), x, *layer.parameters())


@pytest.mark.parametrize("shape", [(4, 8), (2, 4, 8)])
def test_gradcheck_bidirectional(shape):
    layer = make_layer(n_heads=2, causal=False)
    x = Tensor(np.random.default_rng(2).standard_normal(shape))
    assert gradcheck(lambda x, *ps: layer(x), x, *layer.parameters())


def test_gradcheck_with_dropout_reseeded():
    layer = make_layer(n_heads=2, dropout=0.3)
    def f(x, *ps):
        manual_seed(5)  # the same dropout mask at every call: a fixed function
        return layer(x)
    x = Tensor(np.random.default_rng(3).standard_normal((2, 4, 8)))
    assert gradcheck(f, x, *layer.parameters())


@pytest.mark.parametrize("shape", [(4, 6), (2, 4, 6)])
def test_gradcheck_self_attention(shape):
    manual_seed(0)
    layer = SelfAttention(6, head_size=3, bias=True)
    x = Tensor(np.random.default_rng(4).standard_normal(shape))
    assert gradcheck(lambda x, *ps: layer(x), x, *layer.parameters())


@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (3, 5, 5), (2, 3, 5, 5)])
def test_gradcheck_masked_softmax(shape):
    s = Tensor(np.random.default_rng(5).standard_normal(shape))
    assert gradcheck(lambda s: masked_softmax(s, causal_mask(shape[-1])), s)


def test_masked_softmax_matches_masked_fill_then_softmax():
    rng = np.random.default_rng(6)
    mask = causal_mask(6) & ~np.eye(6, k=-2, dtype=bool)  # not only the causal pattern
    g = rng.standard_normal((2, 6, 6))
    a = Tensor(rng.standard_normal((2, 6, 6)))
    b = Tensor(a.data.copy())
    fa, fb = masked_softmax(a, mask), softmax(b.masked_fill(~mask, -np.inf), axis=-1)
    np.testing.assert_allclose(fa.data, fb.data, atol=1e-7)
    (fa * g).sum().backward()
    (fb * g).sum().backward()
    np.testing.assert_allclose(a.grad, b.grad, atol=1e-6)
    assert (a.grad[:, ~mask] == 0).all()


# ------------------------------------------------------------------ causality and weights
@pytest.mark.parametrize("n_heads", [1, 2, 4])
@pytest.mark.parametrize("batched", [False, True])
def test_causality_exact_for_every_position(n_heads, batched):
    layer = make_layer(C=8, context_size=7, n_heads=n_heads)
    rng = np.random.default_rng(7)
    shape = (3, 7, 8) if batched else (7, 8)
    x = rng.standard_normal(shape).astype(np.float32)
    base = layer(x).data
    for t in range(7):
        x2 = x.copy()
        x2[..., t, :] = rng.standard_normal(8)
        out = layer(x2).data
        np.testing.assert_array_equal(out[..., :t, :], base[..., :t, :])  # bit for bit
        assert not np.allclose(out[..., t, :], base[..., t, :])


def test_causality_through_token_ids():
    from causal_attention.layers import Embedding
    manual_seed(0)
    embedding = Embedding(20, 8)
    layer = make_layer(C=8, context_size=6, n_heads=2)
    ids = np.array([[3, 1, 4, 1, 5, 9]])
    base = layer(embedding(ids)).data
    for t in range(6):
        changed = ids.copy()
        changed[0, t] = (ids[0, t] + 7) % 20
        out = layer(embedding(changed)).data
        np.testing.assert_array_equal(out[:, :t], base[:, :t])


def test_bidirectional_layer_is_not_causal():
    layer = make_layer(C=8, context_size=5, n_heads=2, causal=False)
    x = np.random.default_rng(8).standard_normal((5, 8)).astype(np.float32)
    x2 = x.copy()
    x2[-1] += 1
    assert not np.allclose(layer(x).data[0], layer(x2).data[0])


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), T=st.integers(1, 8), n_heads=st.sampled_from([1, 2, 4]),
       batched=st.booleans(), seed=st.integers(0, 10_000))
def test_weights_rows_sum_to_one_and_zero_above_diagonal(B, T, n_heads, batched, seed):
    layer = make_layer(C=8, context_size=8, n_heads=n_heads, seed=seed)
    shape = (B, T, 8) if batched else (T, 8)
    y = layer(np.random.default_rng(seed).standard_normal(shape) * 3)
    assert y.shape == shape
    w = layer.weights
    assert w.shape == ((B,) if batched else ()) + (n_heads, T, T)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    assert (w[..., ~causal_mask(T)] == 0).all()
    assert (w[..., causal_mask(T)] > 0).all()


# ------------------------------------------------------------------ heads
@pytest.mark.parametrize("n_heads", [1, 2, 3, 6])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_multi_head_equals_single_heads_on_slices(n_heads, causal, bias):
    layer = make_layer(C=12, context_size=9, n_heads=n_heads, causal=causal, bias=bias, seed=n_heads)
    x = np.random.default_rng(9).standard_normal((7, 12))
    expected, expected_weights = reference(layer, x)
    np.testing.assert_allclose(layer(x).data, expected, atol=1e-5)
    np.testing.assert_allclose(layer.weights, expected_weights, atol=1e-6)
    batch = np.stack([x, x[::-1]])
    np.testing.assert_allclose(layer(batch).data[1], reference(layer, x[::-1])[0], atol=1e-5)


def test_single_head_layer_matches_self_attention_plus_output():
    manual_seed(0)
    head = SelfAttention(8, head_size=8, bias=True)
    layer = make_layer(C=8, context_size=5, n_heads=1, causal=False)
    for name in ("query", "key", "value"): setattr(layer, name, getattr(head, name))
    x = np.random.default_rng(10).standard_normal((5, 8))
    expected = layer.output(head(x)).data
    np.testing.assert_allclose(layer(x).data, expected, atol=1e-6)
    np.testing.assert_allclose(layer.weights[0], head.weights, atol=1e-7)


def test_split_and_merge_heads():
    x = Tensor(np.arange(2 * 3 * 12, dtype=np.float32).reshape(2, 3, 12))
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 3)
    for h in range(4): np.testing.assert_array_equal(heads.data[:, h], x.data[..., 3 * h:3 * h + 3])
    np.testing.assert_array_equal(merge_heads(heads).data, x.data)
    with pytest.raises(ValueError, match="12 is not divisible by n_heads 5"): split_heads(x, 5)


# ------------------------------------------------------------------ dropout and modes
def test_dropout_training_only():
    layer = make_layer(C=8, context_size=6, n_heads=2, dropout=0.5)
    x = np.random.default_rng(11).standard_normal((2, 6, 8))
    assert not np.allclose(layer(x).data, layer(x).data)
    np.testing.assert_allclose(layer.weights.sum(-1), 1.0, atol=1e-6)  # stored before dropout
    layer.eval()
    assert not layer.attention_dropout.training
    expected, _ = reference(layer, x[0])
    np.testing.assert_allclose(layer(x).data[0], expected, atol=1e-5)


def test_dropout_keeps_expected_weights():
    manual_seed(0)
    w = np.full((4, 4), 0.25, dtype=np.float32)
    mean = np.mean([Dropout(0.25)(Tensor(w)).data for _ in range(3000)], axis=0)
    np.testing.assert_allclose(mean, w, atol=0.02)


def test_shorter_sequences_use_the_corner_of_the_mask():
    layer = make_layer(C=8, context_size=10, n_heads=2)
    x = np.random.default_rng(12).standard_normal((4, 8))
    np.testing.assert_allclose(layer(x).data, reference(layer, x)[0], atol=1e-5)
    assert layer.weights.shape == (2, 4, 4)


# ------------------------------------------------------------------ errors
def test_embedding_size_not_divisible_names_both_numbers():
    with pytest.raises(ValueError, match="embedding_size 10 is not divisible by n_heads 4"):
        CausalSelfAttention(10, context_size=4, n_heads=4)


def test_too_long_sequence_names_both_numbers():
    layer = make_layer(C=8, context_size=4)
    for shape in [(5, 8), (2, 5, 8)]:
        with pytest.raises(ValueError, match="sequence length 5 exceeds context_size 4"): layer(np.zeros(shape))


@pytest.mark.parametrize("shape", [(8,), (4, 7), (2, 4, 7), (1, 2, 4, 8), (0, 8), (2, 0, 8), ()])
def test_wrong_input_shapes(shape):
    layer = make_layer(C=8, context_size=4)
    with pytest.raises(ValueError, match=r"expects input of shape \(T, 8\) or \(B, T, 8\)"):
        layer(np.zeros(shape))


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="embed token ids first"):
        make_layer(C=8, context_size=4)(np.zeros((3, 8), dtype=np.int64))


@pytest.mark.parametrize("kwargs, message", [
    (dict(embedding_size=0, context_size=4), "embedding_size must be a positive integer, got 0"),
    (dict(embedding_size=8, context_size=2.5), "context_size must be a positive integer, got 2.5"),
    (dict(embedding_size=8, context_size=4, n_heads=0), "n_heads must be a positive integer, got 0"),
    (dict(embedding_size=8, context_size=4, n_heads=True), "n_heads must be a positive integer, got True"),
    (dict(embedding_size=8, context_size=4, dropout=1.0), "dropout probability"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message): CausalSelfAttention(**kwargs)


def test_masked_softmax_bad_masks():
    s = Tensor(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="at least one True"): masked_softmax(s, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match=r"mask of shape \(5, 5\) does not fit scores of shape \(2, 4, 4\)"):
        masked_softmax(s, causal_mask(5))
    with pytest.raises(ValueError, match="does not fit"): masked_softmax(s, np.ones((3, 4, 4), bool))
    with pytest.raises(TypeError, match="boolean"): masked_softmax(s, np.ones((4, 4)))
    with pytest.raises(ValueError, match="does not fit"): masked_softmax(s, np.array(True))


# ------------------------------------------------------------------ the heatmap helper
TOKENS = ["every", "morning", ",", "the", "red"]


def panels(fig):
    return [ax for ax in fig.axes if ax.get_images() and ax.get_label() != "<colorbar>"]


@pytest.mark.parametrize("shape, n_panels", [((5, 5), 1), ((1, 5, 5), 1), ((3, 5, 5), 3), ((4, 5, 5), 4)])
def test_show_attention_panels_labels_and_colour_bar(shape, n_panels):
    w = np.random.default_rng(0).random(shape)
    fig = show_attention(w, TOKENS, suptitle="some weights")
    axes = panels(fig)
    assert len(axes) == n_panels
    for i, ax in enumerate(axes):
        assert [t.get_text() for t in ax.get_xticklabels()] == TOKENS
        assert ax.get_xlabel() == "key (attended token)"
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), w.reshape(-1, 5, 5)[i])
    assert axes[0].get_ylabel() == "query (attending token)"
    assert [t.get_text() for t in axes[0].get_yticklabels()] == TOKENS
    colour_bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colour_bars) == 1 and colour_bars[0].get_ylabel() == "attention weight"
    assert fig.get_suptitle() == "some weights"
    if n_panels > 1: assert [ax.get_title() for ax in axes] == [f"head {h}" for h in range(n_panels)]


def test_show_attention_accepts_a_tensor_and_titles():
    layer = make_layer(C=8, context_size=5, n_heads=2)
    layer(np.random.default_rng(0).standard_normal((5, 8)))
    fig = show_attention(Tensor(layer.weights), TOKENS, titles=["a", "b"])
    assert [ax.get_title() for ax in panels(fig)] == ["a", "b"]


def test_show_attention_errors():
    w = np.full((2, 5, 5), 0.2)
    with pytest.raises(ValueError, match="got 4 tokens for weights over T=5"): show_attention(w, TOKENS[:4])
    with pytest.raises(ValueError, match="pick one sequence"): show_attention(w[None], TOKENS)
    with pytest.raises(ValueError, match=r"\(T, T\) or \(H, T, T\)"): show_attention(np.zeros((5, 4)), TOKENS)
    with pytest.raises(ValueError, match=r"\(T, T\) or \(H, T, T\)"): show_attention(np.zeros(5), TOKENS)
    with pytest.raises(ValueError, match="3 titles for 2 panels"): show_attention(w, TOKENS, titles="abc")
