"""Tests of causal_attention.gpt: config checks, shapes, causality, gradients, bad input, seeds, init, counts."""
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from causal_attention.attention import CausalSelfAttention
from causal_attention.gpt import GPT, Block, FeedForward, GPTConfig, count_parameters, init_gpt2
from causal_attention.layers import Embedding, LayerNorm, Linear, manual_seed
from causal_attention.tensor import Tensor, gradcheck, no_grad

SIZES = dict(vocabulary_size=11, context_size=6, embedding_size=8, n_heads=2, n_layers=2)


def make_model(seed=0, **overrides):
    manual_seed(seed)
    return GPT(GPTConfig(**(SIZES | overrides)))


def random_ids(shape, V=SIZES["vocabulary_size"], seed=0):
    return np.random.default_rng(seed).integers(0, V, size=shape)


def n_parameters(c):
    "The parameter count of GPT(c), written out from the architecture (not from the code under test)."
    C, L = c.embedding_size, c.n_layers
    block = 2 * 2 * C + 4 * (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    return c.vocabulary_size * C + c.context_size * C + L * block + 2 * C + c.vocabulary_size * C


# ---------------------------------------------------------------- GPTConfig
def test_config_fields_and_defaults():
    c = GPTConfig(5, 4, 8, 2, 1)
    assert (c.vocabulary_size, c.context_size, c.embedding_size, c.n_heads, c.n_layers, c.dropout) == (5, 4, 8, 2, 1, 0.0)
    assert GPTConfig(**SIZES, dropout=0.25).dropout == 0.25


def test_config_converts_numpy_integers_to_int():
    c = GPTConfig(**{k: np.int64(v) for k, v in SIZES.items()}, dropout=np.float32(0.5))
    for name in SIZES: assert type(getattr(c, name)) is int
    assert type(c.dropout) is float and c.dropout == 0.5


@pytest.mark.parametrize("name", list(SIZES))
@pytest.mark.parametrize("value", [0, -3, 2.0, True, "8", None])
def test_config_rejects_bad_sizes(name, value):
    with pytest.raises(ValueError, match=rf"GPTConfig\.{name} must be a positive integer, got {value!r}"):
        GPTConfig(**(SIZES | {name: value}))


def test_config_rejects_heads_that_do_not_divide_embedding():
    with pytest.raises(ValueError, match="embedding_size=10 must be divisible by n_heads=4"):
        GPTConfig(**(SIZES | dict(embedding_size=10, n_heads=4)))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), "0.1", True, None])
def test_config_rejects_bad_dropout(p):
    with pytest.raises(ValueError, match=r"GPTConfig\.dropout must be a number in \[0, 1\)"):
        GPTConfig(**SIZES, dropout=p)


def test_gpt_needs_a_config():
    with pytest.raises(TypeError, match="GPT expects a GPTConfig, got dict"):
        GPT(dict(SIZES))


# ---------------------------------------------------------------- structure and shapes
def test_public_structure():
    model = make_model()
    assert isinstance(model.token_embedding, Embedding) and model.token_embedding.weight.shape == (11, 8)
    assert isinstance(model.position_embedding, Embedding) and model.position_embedding.weight.shape == (6, 8)
    assert isinstance(model.blocks, list) and len(model.blocks) == 2
    for block in model.blocks:
        assert isinstance(block, Block) and isinstance(block.attention, CausalSelfAttention)
        assert block.attention.n_heads == 2
    assert isinstance(model.norm, LayerNorm)
    assert isinstance(model.head, Linear) and model.head.weight.shape == (11, 8) and model.head.bias is None


@pytest.mark.parametrize("shape", [(1,), (4,), (6,), (1, 6), (3, 1), (3, 5), (2, 6)])
def test_output_shape(shape):
    model = make_model()
    logits = model(random_ids(shape))
    assert logits.shape == shape + (11,)
    assert logits.dtype == np.float32


@pytest.mark.parametrize("convert", [np.asarray, lambda a: a.tolist(), Tensor,
                                     lambda a: a.astype(np.int32), lambda a: a.astype(np.uint8)])
def test_ids_as_list_array_or_tensor(convert):
    model = make_model()
    ids = random_ids((2, 5))
    np.testing.assert_array_equal(model(convert(ids)).data, model(ids).data)


def test_batch_rows_equal_single_windows():
    model = make_model()
    ids = random_ids((4, 6))
    batched = model(ids).data
    for b in range(4):
        np.testing.assert_allclose(batched[b], model(ids[b]).data, rtol=1e-5, atol=1e-6)


def test_shorter_window_is_a_prefix():
    "Causality seen from the other side: the logits of a prefix equal the first logits of the whole window."
    model = make_model()
    ids = random_ids((6,))
    full = model(ids).data
    for T in range(1, 6):
        np.testing.assert_allclose(model(ids[:T]).data, full[:T], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- causality
def influence(model, ids):
    "change[..., s, t]: largest change of the logits at s when token t is replaced."
    base = model(ids).data
    T = ids.shape[-1]
    change = np.zeros(ids.shape[:-1] + (T, T))
    for t in range(T):
        edited = ids.copy()
        edited[..., t] = (edited[..., t] + 1) % model.config.vocabulary_size
        change[..., t] = np.abs(model(edited).data - base).max(axis=-1)
    return change


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(6,), (3, 6), (2, 4)])
def test_whole_model_is_causal(seed, shape):
    model = make_model(seed, n_layers=3)
    change = influence(model, random_ids(shape, seed=seed))
    T = shape[-1]
    upper = np.triu(np.ones((T, T), bool), k=1)
    assert np.all(change[..., upper] <= 1e-6), "a logit moved when a later token changed"
    assert np.all(np.diagonal(change, axis1=-2, axis2=-1) > 1e-4), "the logits at t ignore token t"


def test_earlier_tokens_do_influence_later_logits():
    model = make_model(n_layers=1)
    change = influence(model, random_ids((6,)))
    assert np.all(change[np.tril_indices(6, k=-1)] > 0), "some later position ignores an earlier token"


def test_causal_with_dropout_in_eval_mode():
    model = make_model(dropout=0.3).eval()
    change = influence(model, random_ids((2, 6)))
    assert np.all(change[..., np.triu(np.ones((6, 6), bool), k=1)] <= 1e-6)


# ---------------------------------------------------------------- gradients
TINY = [dict(vocabulary_size=5, context_size=3, embedding_size=4, n_heads=1, n_layers=1),
        dict(vocabulary_size=7, context_size=4, embedding_size=4, n_heads=2, n_layers=2)]


@pytest.mark.parametrize("sizes", TINY)
@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_gradcheck_every_parameter(sizes, shape):
    manual_seed(0)
    model = GPT(GPTConfig(**sizes))
    ids = random_ids(shape, V=sizes["vocabulary_size"], seed=1)
    assert gradcheck(lambda *params: model(ids), *model.parameters())


def test_gradcheck_with_repeated_ids_and_shorter_window():
    manual_seed(3)
    model = GPT(GPTConfig(**TINY[1]))
    ids = np.array([[2, 2], [2, 6]])                     # repeated ids: the embedding gradient must add up
    assert gradcheck(lambda *params: model(ids), *model.parameters())


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)])
def test_gradcheck_block_and_feed_forward(shape):
    manual_seed(1)
    block, feed_forward = Block(4, 3, n_heads=2), FeedForward(4)
    x = Tensor(np.random.default_rng(0).standard_normal(shape))
    assert gradcheck(lambda x, *p: block(x), x, *block.parameters())
    assert gradcheck(lambda x, *p: feed_forward(x), x, *feed_forward.parameters())


def test_backward_reaches_every_parameter():
    model = make_model()
    logits = model(random_ids((2, 6)))
    (logits * Tensor(np.random.default_rng(0).standard_normal(logits.shape))).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == np.float32, name
        assert np.any(p.grad != 0), name


def test_no_grad_builds_no_graph():
    model = make_model()
    with no_grad(): logits = model(random_ids((6,)))
    assert not logits.requires_grad


# ---------------------------------------------------------------- bad input
V, CTX = SIZES["vocabulary_size"], SIZES["context_size"]


@pytest.mark.parametrize("ids, error, message", [
    (np.zeros(CTX + 1, dtype=int), ValueError, f"sequence length {CTX + 1} exceeds context_size {CTX}"),
    (np.zeros((2, CTX + 3), dtype=int), ValueError, f"sequence length {CTX + 3} exceeds context_size {CTX}"),
    ([1, V], ValueError, rf"token id {V} is outside the vocabulary: ids must be in 0\.\.{V - 1} \(vocabulary_size={V}\)"),
    ([[0, 1], [V + 5, 2]], ValueError, f"token id {V + 5} is outside the vocabulary"),
    ([3, -1], ValueError, "token id -1 is outside the vocabulary"),
    (Tensor(np.array([0, V])), ValueError, f"token id {V} is outside the vocabulary"),
    (np.array([1.0, 2.0]), TypeError, "token ids must be integers, got dtype float64"),
    (Tensor([1.0, 2.0]), TypeError, "token ids must be integers, got dtype float32"),
    (np.array([True, False]), TypeError, "token ids must be integers, got dtype bool"),
    (np.array(["a", "b"]), TypeError, "token ids must be integers"),
    (3, ValueError, r"shape \(T,\) or \(B, T\), got shape \(\)"),
    (np.zeros((2, 2, 2), dtype=int), ValueError, r"shape \(T,\) or \(B, T\), got shape \(2, 2, 2\)"),
    (np.zeros(0, dtype=int), ValueError, r"token ids are empty \(shape \(0,\)\)"),
    ([], ValueError, "token ids are empty"),
    (np.zeros((0, 3), dtype=int), ValueError, "token ids are empty"),
    ([[1, 2], [3]], ValueError, "rectangular"),
])
def test_bad_ids(ids, error, message):
    model = make_model()
    with pytest.raises(error, match=message) as info:
        model(ids)
    assert type(info.value) is error                      # not a subclass such as IndexError


def test_value_error_where_the_embedding_raises_index_error():
    model = make_model()
    with pytest.raises(IndexError):
        model.token_embedding(np.array([V]))
    with pytest.raises(ValueError, match=f"token id {V}"):
        model(np.array([V]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=1, max_size=CTX))
def test_any_id_is_accepted_or_rejected_with_value_error(ids):
    model = make_model()
    if all(0 <= i < V for i in ids):
        assert model(ids).shape == (len(ids), V)
    else:
        with pytest.raises(ValueError, match="outside the vocabulary"):
            model(ids)


def test_init_gpt2_rejects_bad_n_layers():
    with pytest.raises(ValueError, match="n_layers must be a positive integer, got 0"):
        init_gpt2(Linear(2, 2), n_layers=0)


# ---------------------------------------------------------------- seeds and dropout
def test_same_seed_same_model_and_logits():
    a, b, c = make_model(0), make_model(0), make_model(1)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    ids = random_ids((2, 6))
    np.testing.assert_array_equal(a(ids).data, b(ids).data)
    assert not np.allclose(a(ids).data, c(ids).data)


def test_reset_parameters_redraws_from_the_seeded_generator():
    a, b = make_model(0), make_model(1)
    before = [p.data.copy() for p in a.parameters()]
    manual_seed(5); a.reset_parameters()
    manual_seed(5); b.reset_parameters()
    for p, q in zip(a.parameters(), b.parameters()): np.testing.assert_array_equal(p.data, q.data)
    assert not np.array_equal(a.head.weight.data, before[-1])


def test_reset_parameters_restores_layer_norms():
    model = make_model()
    for p in model.parameters(): p.data += 1.0            # as if trained
    model.reset_parameters()
    for name, p in model.named_parameters():
        if "norm" in name:
            np.testing.assert_array_equal(p.data, 1.0 if name.endswith("weight") else 0.0, err_msg=name)
        elif name.endswith("bias"):
            np.testing.assert_array_equal(p.data, 0.0, err_msg=name)
        else:
            assert abs(p.data.mean()) < 0.05, name


def test_dropout_train_and_eval():
    noisy, plain = make_model(0, dropout=0.2), make_model(0)
    ids = random_ids((2, 6))
    assert noisy.training
    assert not np.allclose(noisy(ids).data, noisy(ids).data)
    noisy.eval()
    assert all(not layer.training for block in noisy.blocks for layer in (block, block.attention, block.dropout))
    np.testing.assert_array_equal(noisy(ids).data, noisy(ids).data)
    np.testing.assert_allclose(noisy(ids).data, plain(ids).data, rtol=1e-6, atol=1e-7)
    noisy.train()
    assert not np.allclose(noisy(ids).data, noisy(ids).data)


# ---------------------------------------------------------------- initialisation
def test_gpt2_initialisation_statistics():
    manual_seed(0)
    config = GPTConfig(vocabulary_size=300, context_size=64, embedding_size=64, n_heads=4, n_layers=4)
    model = GPT(config)
    residual = {id(p) for b in model.blocks for p in (b.attention.output.weight, b.feed_forward.project.weight)}
    for name, p in model.named_parameters():
        assert p.dtype == np.float32, name
        if name.endswith("bias"):
            np.testing.assert_array_equal(p.data, 0, err_msg=name)
        elif ".norm" in name or name.startswith("norm"):
            np.testing.assert_array_equal(p.data, 1, err_msg=name)        # LayerNorm scale
        else:
            expected = 0.02 / math.sqrt(2 * 4) if id(p) in residual else 0.02
            assert abs(p.data.std() / expected - 1) < 0.05, (name, p.data.std(), expected)
            assert abs(p.data.mean()) < 0.1 * expected, name


def test_initial_loss_is_close_to_log_vocabulary():
    manual_seed(0)
    config = GPTConfig(vocabulary_size=500, context_size=16, embedding_size=32, n_heads=4, n_layers=2)
    ids = random_ids((8, 16), V=500)
    with no_grad(): logits = GPT(config)(ids).data
    z = logits - logits.max(-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(-1, keepdims=True))
    targets = np.roll(ids, -1, axis=1)
    loss = -np.take_along_axis(log_probs, targets[..., None], -1).mean()
    assert abs(loss - math.log(500)) < 0.05


def test_residual_stream_does_not_grow_with_depth():
    manual_seed(0)
    C, T, L = 32, 8, 12
    stack = [Block(C, T, n_heads=4) for _ in range(L)]
    for block in stack: init_gpt2(block, n_layers=L)
    x = Tensor(np.random.default_rng(0).normal(0, 0.02, (4, T, C)))
    with no_grad():
        for block in stack: x = block(x)
    assert x.data.std() < 1.5 * 0.02


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize("sizes", [(5, 3, 4, 1, 1), (11, 6, 8, 2, 2), (50, 10, 12, 3, 3), (612, 32, 64, 4, 2)])
def test_parameter_count(sizes):
    manual_seed(0)
    config = GPTConfig(*sizes)
    model = GPT(config)
    assert count_parameters(model) == n_parameters(config)
    params = model.parameters()
    assert len({id(p) for p in params}) == len(params)
    assert len(params) == 5 + 16 * config.n_layers   # 2 embeddings, head, final norm (2); 16 tensors per block


def test_parameter_names():
    names = [name for name, _ in make_model(n_layers=1).named_parameters()]
    assert names[:2] == ["token_embedding.weight", "position_embedding.weight"]
    assert "blocks.0.attention.query.weight" in names and "blocks.0.feed_forward.project.bias" in names
    assert names[-3:] == ["norm.weight", "norm.bias", "head.weight"]


def test_count_parameters_counts_shared_tensors_once():
    model = make_model()
    before = count_parameters(model)
    model.head.weight = model.token_embedding.weight
    assert count_parameters(model) == before - V * SIZES["embedding_size"]
    assert len(model.parameters()) == len({id(p) for p in model.parameters()})


def make_tiny_tied():
    manual_seed(0)
    model = GPT(GPTConfig(**TINY[1]))
    model.head.weight = model.token_embedding.weight
    return model


def test_gradcheck_tied_weights():
    model = make_tiny_tied()
    ids = np.array([[1, 6, 0, 3], [2, 2, 5, 4]])
    assert gradcheck(lambda *p: model(ids), *model.parameters())


def test_config_is_kept_and_replaceable():
    model = make_model()
    assert model.config == GPTConfig(**SIZES)
    assert replace(model.config, n_layers=3).n_layers == 3
