"""Tests for causal_attention.train: loss, optimizers, evaluation, the loop, generation, files, resume."""
import json
import math
import platform
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_attention import layers
from causal_attention.data import LLMDataset, load_text, tinybook_path
from causal_attention.gpt import GPT, GPTConfig
from causal_attention.layers import manual_seed
from causal_attention.tensor import Tensor, gradcheck, is_grad_enabled, no_grad
from causal_attention.train import (
    SGD, AdamW, Evaluation, History, cross_entropy, evaluate, generate, keep_freed_memory, load,
    load_checkpoint, save, save_checkpoint, train)
from causal_attention import train as train_module

TEXT = load_text(tinybook_path())[:400]   # about 90 tokens: 8 batches of 8 windows per epoch


def datasets(batch_size=8, seed=7):
    "A shuffled train split and a validation split of TEXT, context 6."
    data = LLMDataset(TEXT, context_size=6, batch_size=batch_size, validation_fraction=0.25, seed=seed)
    validation = LLMDataset(TEXT, context_size=6, stride=6, batch_size=8, split="validation",
                            validation_fraction=0.25, tokenizer=data.tokenizer, shuffle=False)
    return data, validation


def tiny_model(seed=0, dropout=0.0, vocabulary_size=None, context_size=6):
    "A one-block GPT small enough for fast tests."
    manual_seed(seed)
    V = vocabulary_size or datasets()[0].tokenizer.vocabulary_size
    return GPT(GPTConfig(V, context_size=context_size, embedding_size=8, n_heads=2, n_layers=1, dropout=dropout))


def direct_cross_entropy(z, y):
    "-log softmax(z)[y], averaged, straight from the definition in float64."
    z = np.asarray(z, dtype=np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return -np.log(np.take_along_axis(p, np.asarray(y)[..., None], -1)).mean()


def same_weights(a, b):
    return all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))


# ------------------------------------------------------------------ cross_entropy
SHAPES = [(5,), (1, 5), (4, 5), (2, 3, 5), (2, 1, 7), (1, 1, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_cross_entropy_value(shape):
    rng = np.random.default_rng(0)
    z = (rng.standard_normal(shape) * 4).astype(np.float32)
    y = rng.integers(0, shape[-1], shape[:-1])
    loss = cross_entropy(Tensor(z), y)
    assert loss.shape == () and loss.dtype == np.float32
    assert loss.item() == pytest.approx(direct_cross_entropy(z, y), rel=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_cross_entropy_gradcheck(shape):
    rng = np.random.default_rng(1)
    logits = Tensor(rng.standard_normal(shape))
    y = rng.integers(0, shape[-1], shape[:-1])
    assert gradcheck(lambda z: cross_entropy(z, y), logits)


def test_cross_entropy_gradient_inside_a_graph():
    "The upstream gradient is used: the loss times 3 has three times the gradient."
    rng = np.random.default_rng(2)
    z, y = rng.standard_normal((3, 4)), rng.integers(0, 4, 3)
    assert gradcheck(lambda t: cross_entropy(t * 2.0, y) * 3.0, Tensor(z))


def test_cross_entropy_uniform_and_extreme_logits():
    assert cross_entropy(Tensor(np.zeros((3, 10))), [0, 4, 9]).item() == pytest.approx(math.log(10), rel=1e-6)
    huge = Tensor([[1e4, 0.0, -1e4], [0.0, 0.0, 1e4]])
    loss = cross_entropy(huge, [1, 2])
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(1e4 / 2, rel=1e-5)
    loss.backward()
    assert np.isfinite(huge.grad).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(2, 9), st.integers(0, 10_000))
def test_cross_entropy_gradient_rows(n, V, seed):
    "Each row of the gradient is (softmax - one-hot) / N: it sums to 0 and is negative only at the target."
    rng = np.random.default_rng(seed)
    logits = Tensor(rng.standard_normal((n, V)) * 3)
    y = rng.integers(0, V, n)
    cross_entropy(logits, y).backward()
    p = np.exp(logits.data - logits.data.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    expected = p.copy()
    expected[np.arange(n), y] -= 1
    np.testing.assert_allclose(logits.grad, expected / n, atol=1e-6)
    np.testing.assert_allclose(logits.grad.sum(-1), 0, atol=1e-6)


@pytest.mark.parametrize("targets,error,message", [
    (np.zeros((3, 2), int), ValueError, r"targets have shape \(3, 2\).*need targets of shape \(2, 3\)"),
    (np.zeros(6, int), ValueError, r"targets have shape \(6,\)"),
    (np.full((2, 3), 5), ValueError, r"target id 5 is out of range.*\[0, 5\)"),
    (np.full((2, 3), -2), ValueError, r"target id -2 is out of range"),
    (np.zeros((2, 3)), TypeError, r"integer token ids, got dtype float64"),
])
def test_cross_entropy_bad_targets(targets, error, message):
    with pytest.raises(error, match=message):
        cross_entropy(Tensor(np.zeros((2, 3, 5))), targets)


def test_cross_entropy_bad_logits():
    with pytest.raises(TypeError, match="logits must be a Tensor"):
        cross_entropy(np.zeros((2, 5)), [0, 1])
    with pytest.raises(ValueError, match="no targets"):
        cross_entropy(Tensor(np.zeros((0, 5))), np.zeros(0, int))


# ------------------------------------------------------------------ SGD
def minimise_square(optimizer, theta, n):
    "n steps on sum(theta ** 2); the values after each step."
    values = []
    for _ in range(n):
        optimizer.zero_grad()
        (theta * theta).sum().backward()
        optimizer.step()
        values.append(theta.data.copy())
    return np.array(values)


def test_sgd_by_hand():
    theta = Tensor([1.0, -2.0])
    # gradient 2 theta, lr 0.1: theta <- 0.8 theta
    np.testing.assert_allclose(minimise_square(SGD([theta], lr=0.1), theta, 3), [[0.8, -1.6], [0.64, -1.28], [0.512, -1.024]], rtol=1e-6)
    theta = Tensor([1.0])
    # momentum 0.5: u1 = 2, theta1 = 0.8; u2 = 1 + 1.6 = 2.6, theta2 = 0.54; u3 = 1.3 + 1.08 = 2.38, theta3 = 0.302
    np.testing.assert_allclose(minimise_square(SGD([theta], lr=0.1, momentum=0.5), theta, 3).ravel(), [0.8, 0.54, 0.302], rtol=1e-6)


def test_sgd_skips_parameters_without_gradient():
    a, b = Tensor([1.0]), Tensor([2.0])
    optimizer = SGD([a, b], lr=0.1, momentum=0.9)
    optimizer.zero_grad()
    (a * a).sum().backward()
    optimizer.step()
    assert b.data[0] == 2.0 and optimizer.velocity[1][0] == 0.0 and optimizer.step_count == 1


# ------------------------------------------------------------------ AdamW
def reference_adamw(theta, grads, lr, beta1, beta2, eps, weight_decay):
    "AdamW written out in Python floats, one element at a time, from the paper's update rule."
    theta, m, v, history = list(theta), [0.0] * len(theta), [0.0] * len(theta), []
    for t, g in enumerate(grads, start=1):
        for i in range(len(theta)):
            theta[i] -= lr * weight_decay * theta[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            m_hat, v_hat = m[i] / (1 - beta1 ** t), v[i] / (1 - beta2 ** t)
            theta[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
        history.append(list(theta))
    return np.array(history)


@pytest.mark.parametrize("settings_", [dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
                                       dict(lr=0.01, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.0),
                                       dict(lr=0.3, betas=(0.0, 0.0), eps=1e-8, weight_decay=0.5)])
def test_adamw_against_reference(settings_):
    rng = np.random.default_rng(3)
    start = [1.0, -0.5, 2.0]
    grads = rng.standard_normal((4, 3)).tolist()
    theta = Tensor(start)
    optimizer = AdamW([theta], **settings_)
    ours = []
    for g in grads:
        theta.grad = np.array(g, dtype=np.float32)
        optimizer.step()
        ours.append(theta.data.copy())
    beta1, beta2 = settings_["betas"]
    expected = reference_adamw(start, np.array(grads, dtype=np.float32).tolist(), settings_["lr"], beta1, beta2,
                               settings_["eps"], settings_["weight_decay"])
    np.testing.assert_allclose(np.array(ours), expected, rtol=2e-6, atol=1e-6)
    assert theta.data.dtype == np.float32 and optimizer.step_count == 4


def test_adamw_first_step_numbers():
    "First step by hand: theta = 1 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8) = 0.899."
    theta = Tensor([1.0])
    optimizer = AdamW([theta], lr=0.1, weight_decay=0.01)
    theta.grad = np.array([0.5], dtype=np.float32)
    optimizer.step()
    assert theta.data[0] == pytest.approx(0.899, abs=1e-6)
    assert optimizer.m[0][0] == pytest.approx(0.05) and optimizer.v[0][0] == pytest.approx(0.00025)


def test_adamw_zero_gradient_stays_finite():
    theta = Tensor([1.0, 2.0])
    optimizer = AdamW([theta], lr=0.1, weight_decay=0.0)
    for _ in range(3):
        theta.grad = np.zeros(2, dtype=np.float32)
        optimizer.step()
    np.testing.assert_array_equal(theta.data, [1.0, 2.0])


@pytest.mark.parametrize("make,message", [
    (lambda p: SGD(p, lr=0.0), "lr must be a positive number, got 0.0"),
    (lambda p: SGD(p, lr=float("nan")), "lr must be a positive number"),
    (lambda p: SGD(p, lr="0.1"), "lr must be a positive number, got '0.1'"),
    (lambda p: SGD(p, lr=0.1, momentum=-0.1), r"momentum must be in \[0, 1\)"),
    (lambda p: SGD(p, lr=0.1, momentum=1), r"momentum must be in \[0, 1\)"),
    (lambda p: AdamW(p, lr=-1e-3), "lr must be a positive number"),
    (lambda p: AdamW(p, betas=(0.9,)), "betas must be a pair"),
    (lambda p: AdamW(p, betas=(1.0, 0.999)), r"betas\[0\] must be in \[0, 1\), got 1.0"),
    (lambda p: AdamW(p, betas=(0.9, -0.1)), r"betas\[1\] must be in \[0, 1\)"),
    (lambda p: AdamW(p, eps=0), "eps must be a positive number"),
    (lambda p: AdamW(p, weight_decay=-0.01), "weight_decay must be a number >= 0, got -0.01"),
    (lambda p: AdamW(p, weight_decay=True), "weight_decay must be a number >= 0, got True"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([Tensor([1.0])])


def test_bad_parameters():
    with pytest.raises(ValueError, match="empty list of parameters"): AdamW([])
    with pytest.raises(TypeError, match="parameter 1 must be a float Tensor, got ndarray"): AdamW([Tensor([1.0]), np.ones(2)])


def test_state_dict_round_trip_and_refusals():
    theta = Tensor([1.0, -1.0])
    first = AdamW([theta], lr=0.05, betas=(0.8, 0.99))
    for _ in range(3): minimise_square(first, theta, 1)
    state = first.state_dict()
    state["buffers"]["m"][0][:] = 123.0   # a copy: changing it leaves the optimizer alone
    assert first.m[0][0] != 123.0
    state = first.state_dict()

    other = Tensor(theta.data.copy())
    second = AdamW([other])
    second.load_state_dict(state)
    assert (second.lr, second.betas, second.step_count) == (0.05, (0.8, 0.99), 3)
    minimise_square(first, theta, 1); minimise_square(second, other, 1)
    np.testing.assert_array_equal(theta.data, other.data)

    fresh = AdamW([Tensor([0.0, 0.0])])
    bad_states = [
        ({**state, "type": "SGD"}, "expected the state of a AdamW, got 'SGD'"),
        ({**state, "buffers": {"m": state["buffers"]["m"], "v": []}}, "0 'v' arrays, expected one per parameter"),
        ({**state, "buffers": {"m": [np.zeros(3)], "v": [np.zeros(3)]}}, r"'m' array 0 has shape \(3,\)"),
        ({**state, "hyperparameters": {**state["hyperparameters"], "lr": -1}}, "lr must be a positive number"),
        ({**state, "step_count": -1}, "step_count must be a non-negative integer"),
    ]
    for bad, message in bad_states:
        with pytest.raises(ValueError, match=message): fresh.load_state_dict(bad)
        assert fresh.step_count == 0 and fresh.lr == 1e-3 and not fresh.m[0].any()   # nothing changed


# ------------------------------------------------------------------ evaluate
def test_evaluate_matches_a_direct_computation():
    model = tiny_model(dropout=0.3)
    data, validation = datasets()
    batches = [data[0], data[1], (data[2][0][:3], data[2][1][:3])]   # batches of 8, 8 and 3 windows
    result = evaluate(model, batches)
    model.eval()
    with no_grad():
        logits = [model(x).data for x, _ in batches]
    model.train()
    losses = [direct_cross_entropy(z, y) * y.size for z, (_, y) in zip(logits, batches)]
    tokens = sum(y.size for _, y in batches)
    correct = sum(int((z.argmax(-1) == y).sum()) for z, (_, y) in zip(logits, batches))
    assert isinstance(result, Evaluation)
    assert result.loss == pytest.approx(sum(losses) / tokens, rel=1e-5)
    assert result.accuracy == correct / tokens
    assert model.training                            # the mode is restored
    assert evaluate(model, batches) == result        # dropout is off: deterministic
    model.eval()
    evaluate(model, batches)
    assert not model.training


def test_evaluate_runs_without_a_graph_in_eval_mode():
    seen = []
    class Probe(FixedModel):
        def __call__(self, ids):
            seen.append((is_grad_enabled(), self.training))
            return super().__call__(ids)
    model = Probe(np.zeros(5), context_size=3)
    result = evaluate(model, [(np.zeros((2, 3), int), np.zeros((2, 3), int))])
    assert seen == [(False, False)] and model.training and is_grad_enabled()
    assert result.loss == pytest.approx(math.log(5)) and result.accuracy == 1.0   # argmax of equal logits is id 0
    with pytest.raises(ValueError, match="no batches"):
        evaluate(model, [])


# ------------------------------------------------------------------ train
def test_train_steps_epochs_and_history():
    data, validation = datasets()
    model = tiny_model()
    optimizer = AdamW(model.parameters(), lr=1e-2)
    history = train(model, optimizer, data, validation, epochs=2, eval_every=5, progress=False)
    n = 2 * len(data)
    assert optimizer.step_count == n and history.steps == list(range(1, n + 1)) and len(history.train_loss) == n
    assert history.validation_steps == list(range(0, n, 5)) + [n]
    assert len(history.validation_loss) == len(history.validation_accuracy) == len(history.validation_steps)
    assert history.validation_loss[-1] < history.validation_loss[0]
    assert np.mean(history.train_loss[-4:]) < np.mean(history.train_loss[:4])
    assert all(isinstance(x, float) for x in history.train_loss)
    assert all(p.data.dtype == np.float32 for p in model.parameters())


def test_train_defaults_to_one_epoch_and_accepts_a_list_of_batches():
    data, _ = datasets()
    model = tiny_model()
    batches = [data[i] for i in range(3)]
    history = train(model, SGD(model.parameters(), lr=0.1), batches, progress=False)
    assert history.steps == [1, 2, 3] and history.validation_steps == []


def test_two_calls_continue_like_one():
    "The data position comes from the optimizer's step count: 7 + 6 steps equal 13 steps."
    data, _ = datasets()
    config = tiny_model(dropout=0.2).config
    manual_seed(3); model_a = GPT(config)
    optimizer_a = AdamW(model_a.parameters(), lr=1e-2)
    train(model_a, optimizer_a, data, steps=13, progress=False)
    manual_seed(3); model_b = GPT(config)
    optimizer_b = AdamW(model_b.parameters(), lr=1e-2)
    history = train(model_b, optimizer_b, data, steps=7, progress=False)
    train(model_b, optimizer_b, data, steps=6, progress=False, history=history)
    assert same_weights(model_a, model_b) and history.steps == list(range(1, 14))


@pytest.mark.parametrize("kwargs,message", [
    (dict(epochs=1, steps=2), "not both"), (dict(steps=0), "steps must be an integer >= 1, got 0"),
    (dict(epochs=0), "epochs must be an integer >= 1"), (dict(steps=2.5), "steps must be an integer"),
    (dict(eval_every=0), "eval_every must be"), (dict(checkpoint_every=2), "needs a checkpoint_path"),
])
def test_train_bad_arguments(kwargs, message):
    model = tiny_model()
    with pytest.raises(ValueError, match=message):
        train(model, AdamW(model.parameters()), datasets()[0], progress=False, **kwargs)


def test_train_empty_data():
    model = tiny_model()
    with pytest.raises(ValueError, match="train_data is empty"):
        train(model, AdamW(model.parameters()), [], progress=False)


def test_train_progress_bar_goes_to_stdout(capsys):
    data, validation = datasets()
    model = tiny_model()
    train(model, AdamW(model.parameters()), data, validation, steps=3, progress=True)
    captured = capsys.readouterr()
    assert "training: 100%" in captured.out and "3/3" in captured.out and captured.err == ""


# ------------------------------------------------------------------ generate
class FixedModel:
    "A stand-in model whose next-token logits are always `logits`; it records the contexts it sees."
    def __init__(self, logits, context_size=4):
        self.logits = np.asarray(logits, dtype=np.float32)
        self.config = GPTConfig(len(self.logits), context_size, 4, 1, 1)
        self.training, self.contexts = True, []
    def train(self, mode=True): self.training = mode; return self
    def eval(self): return self.train(False)
    def __call__(self, ids):
        ids = np.asarray(ids)
        assert ids.shape[-1] <= self.config.context_size
        self.contexts.append(ids.copy())
        return Tensor(np.broadcast_to(self.logits, ids.shape + self.logits.shape).copy())


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(temperature=-0.5), ValueError, "temperature must be a number >= 0 .0 means greedy., got -0.5"),
    (dict(temperature=float("nan")), ValueError, "temperature must be"),
    (dict(top_k=0), ValueError, "top_k must be an integer >= 1, got 0"),
    (dict(top_k=-3), ValueError, "top_k must be an integer >= 1, got -3"),
    (dict(top_k=1.5), ValueError, "top_k must be an integer"),
    (dict(max_new_tokens=-1), ValueError, "max_new_tokens must be an integer >= 0, got -1"),
    (dict(ids=[]), ValueError, r"shape \(T,\) or \(B, T\) with T >= 1, got shape \(0,\)"),
    (dict(ids=[[[1]]]), ValueError, r"got shape \(1, 1, 1\)"),
    (dict(ids=[1, 99]), ValueError, r"prompt id 99 is outside the vocabulary \[0, 5\)"),
    (dict(ids=[-1]), ValueError, "prompt id -1"),
    (dict(ids=[1.0, 2.0]), TypeError, "integer token ids, got dtype float64"),
])
def test_generate_bad_arguments(kwargs, error, message):
    arguments = dict(ids=[1, 2], max_new_tokens=3) | kwargs
    with pytest.raises(error, match=message):
        generate(FixedModel(np.zeros(5)), **arguments)


def test_generate_crops_the_context():
    model = FixedModel([0.0, 3.0, 1.0, 0.5, 0.0], context_size=4)
    out = generate(model, [0, 1, 2, 3, 4, 0, 1], max_new_tokens=3, temperature=0)
    np.testing.assert_array_equal(out, [0, 1, 2, 3, 4, 0, 1, 1, 1, 1])
    assert [c.shape for c in model.contexts] == [(1, 4)] * 3
    np.testing.assert_array_equal(model.contexts[0], [[3, 4, 0, 1]])
    np.testing.assert_array_equal(model.contexts[-1], [[0, 1, 1, 1]])


def test_generate_on_a_gpt_crops_and_is_deterministic():
    model = tiny_model(dropout=0.2, context_size=6)
    prompt = list(range(10))                                   # longer than context_size 6
    greedy = generate(model, prompt, 5, temperature=0)
    assert greedy.dtype == np.int64 and greedy.shape == (15,) and list(greedy[:10]) == prompt
    np.testing.assert_array_equal(generate(model, prompt, 5, temperature=0, seed=123), greedy)
    np.testing.assert_array_equal(generate(model, [7] * 3 + prompt[-6:], 5, temperature=0)[-5:], greedy[-5:])
    np.testing.assert_array_equal(generate(model, prompt, 5, top_k=1, seed=4), greedy)
    model.eval()
    with no_grad(): first = int(model(np.array(prompt[-6:])).data[-1].argmax())
    model.train()
    assert greedy[10] == first and model.training
    sample = generate(model, prompt, 8, seed=5)
    np.testing.assert_array_equal(generate(model, prompt, 8, seed=5), sample)
    assert not np.array_equal(generate(model, prompt, 8, seed=6), sample)
    assert generate(model, prompt, 0).tolist() == prompt
    assert generate(model, [prompt[:3], prompt[3:6]], 4, seed=1).shape == (2, 7)


def test_generate_leaves_the_dropout_generator_alone():
    model = tiny_model(dropout=0.5)
    manual_seed(42); expected = layers._rng.random(4)
    manual_seed(42); generate(model, [1, 2, 3], 5, seed=0)
    np.testing.assert_array_equal(layers._rng.random(4), expected)


def test_sampling_follows_softmax_of_logits_over_temperature():
    logits = np.log([0.1, 0.2, 0.3, 0.4])
    for temperature in [0.5, 1.0, 2.0]:
        model = FixedModel(logits, context_size=2)
        sample = generate(model, [0], 2000, temperature=temperature, seed=0)[1:]
        expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
        np.testing.assert_allclose(np.bincount(sample, minlength=4) / 2000, expected, atol=0.04)


def test_top_k_samples_only_the_k_most_likely():
    model = FixedModel([0.0, 2.0, -1.0, 1.9, 0.5, 1.0], context_size=2)
    sample = generate(model, [0], 500, top_k=2, temperature=2.0, seed=0)[1:]
    assert set(sample.tolist()) == {1, 3}
    assert set(generate(model, [0], 500, top_k=50, seed=0)[1:].tolist()) == set(range(6))  # k > V: everything


# ------------------------------------------------------------------ save / load
@pytest.fixture
def saved(tmp_path):
    "A tiny trained-a-little model saved to tmp_path / 'model.npz'."
    model = tiny_model(dropout=0.1)
    data, _ = datasets()
    train(model, AdamW(model.parameters(), lr=1e-2), data, steps=3, progress=False)
    save(model, tmp_path / "model.npz")
    return model, tmp_path / "model.npz"


def test_save_load_round_trip(saved):
    model, path = saved
    restored = load(path)
    assert restored.config == model.config
    assert [n for n, _ in restored.named_parameters()] == [n for n, _ in model.named_parameters()]
    ids = datasets()[0].inputs[:5]
    model.eval(); restored.eval()
    with no_grad():
        np.testing.assert_array_equal(restored(ids).data, model(ids).data)
    assert all(p.data.dtype == np.float32 and p.data.flags.writeable for p in restored.parameters())
    with np.load(path, allow_pickle=False) as archive:
        assert json.loads(str(archive["config"]))["dropout"] == 0.1


def test_load_leaves_the_random_generator_alone(saved):
    manual_seed(5); expected = layers._rng.random(3)
    manual_seed(5); load(saved[1])
    np.testing.assert_array_equal(layers._rng.random(3), expected)


def test_save_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(tiny_model(), tmp_path / "no" / "such" / "model.npz")
    with pytest.raises(TypeError, match="save expects a GPT"):
        save(layers.Linear(2, 3), tmp_path / "linear.npz")


def test_failed_save_keeps_the_old_file(saved, monkeypatch):
    model, path = saved
    before = path.read_bytes()
    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half of a file")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save(tiny_model(seed=9), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ["model.npz"]
    load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load(tmp_path / "missing.npz")


@pytest.mark.parametrize("keep", [0, 10, 0.5, -1, -22])
def test_load_truncated_file(saved, keep):
    _, path = saved
    whole = path.read_bytes()
    cut = path.parent / "cut.npz"
    cut.write_bytes(whole[:int(len(whole) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(ValueError, match="cut.npz' is not a readable .npz model file"):
        load(cut)


def rewrite(path, target, change):
    "Write to `target` the arrays of `path`, passed through `change(dict) -> dict`."
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    np.savez(target, **change(arrays))
    return target


@pytest.mark.parametrize("change,message", [
    (lambda a: {k: v for k, v in a.items() if k != "config"}, "has no 'config' text entry"),
    (lambda a: {k: v for k, v in a.items() if k != "format"}, "has no 'format' text entry"),
    (lambda a: a | {"format": np.array("something.else")}, "has format 'something.else', expected 'causal_attention.gpt'"),
    (lambda a: a | {"config": np.array("{not json")}, "'config' entry is not valid JSON"),
    (lambda a: a | {"config": np.array(3.0)}, "has no 'config' text entry"),
    (lambda a: a | {"config": np.array('{"vocabulary_size": 5, "color": "red"}')}, "invalid GPT config"),
    (lambda a: a | {"config": np.array('{"vocabulary_size": 5, "context_size": 6, "embedding_size": 8, '
                                       '"n_heads": 3, "n_layers": 1}')}, "invalid GPT config"),
    (lambda a: {k: v for k, v in a.items() if k != "parameter/head.weight"}, r"missing parameters \['head.weight'\]"),
    (lambda a: a | {"parameter/extra.weight": np.ones(2, np.float32)}, r"unexpected \['extra.weight'\]"),
    (lambda a: a | {"parameter/norm.weight": np.ones(3, np.float32)}, r"parameter norm.weight has shape \(3,\)"),
    (lambda a: a | {"parameter/norm.weight": np.ones(8)}, "dtype float64"),
])
def test_load_refuses_foreign_or_damaged_files(saved, tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        load(rewrite(saved[1], tmp_path / "other.npz", change))


def test_load_refuses_other_kinds_of_file(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model at all")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "array.npy", np.ones(3))
    np.savez(tmp_path / "foreign.npz", weights=np.ones(3))
    for name, message in [("notes.txt", "not a readable .npz"), ("empty.npz", "not a readable .npz"),
                          ("array.npy", "single array"), ("foreign.npz", "no 'format' text entry")]:
        with pytest.raises(ValueError, match=message):
            load(tmp_path / name)


# ------------------------------------------------------------------ checkpoints and resume
class CrashingData:
    "The batches of `data`, but the batch of global step `crash_at` raises KeyboardInterrupt."
    def __init__(self, data, crash_at): self.data, self.crash_at, self.epoch = data, crash_at, 0
    def __len__(self): return len(self.data)
    def set_epoch(self, epoch): self.data.set_epoch(epoch); self.epoch = epoch
    def __getitem__(self, index):
        if self.epoch * len(self.data) + index == self.crash_at: raise KeyboardInterrupt("crash")
        return self.data[index]


@pytest.mark.parametrize("make_optimizer", [lambda ps: AdamW(ps, lr=3e-3, weight_decay=0.1),
                                            lambda ps: SGD(ps, lr=0.05, momentum=0.9)], ids=["AdamW", "SGD"])
def test_resume_equals_uninterrupted(tmp_path, make_optimizer):
    data, validation = datasets()
    assert len(data) == 8                       # 20 steps cross two epoch boundaries
    config = tiny_model(dropout=0.3).config

    manual_seed(11)
    model_a = GPT(config)
    history_a = train(model_a, make_optimizer(model_a.parameters()), data, validation, steps=20,
                      eval_every=4, progress=False)

    manual_seed(11)
    model_b = GPT(config)
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(KeyboardInterrupt):
        train(model_b, make_optimizer(model_b.parameters()), CrashingData(data, crash_at=13), validation,
              steps=20, eval_every=4, progress=False, checkpoint_path=path, checkpoint_every=3)
    data.set_epoch(2)                           # the dataset was left elsewhere
    manual_seed(999)                            # a new process has another random state
    model_b, optimizer_b, history_b = load_checkpoint(path)
    assert optimizer_b.step_count == 12 and history_b.steps == list(range(1, 13))
    train(model_b, optimizer_b, data, validation, steps=8, eval_every=4, progress=False, history=history_b)

    assert same_weights(model_a, model_b)
    assert history_b == history_a


def test_checkpoint_contents(tmp_path):
    model = tiny_model(dropout=0.2)
    optimizer = AdamW(model.parameters(), lr=2e-3, betas=(0.8, 0.95), weight_decay=0.05)
    history = train(model, optimizer, datasets()[0], steps=5, progress=False)
    save_checkpoint(model, optimizer, tmp_path / "c.npz", history)
    expected_random = layers._rng.random(3)
    manual_seed(0)
    restored, restored_optimizer, restored_history = load_checkpoint(tmp_path / "c.npz")
    np.testing.assert_array_equal(layers._rng.random(3), expected_random)
    assert same_weights(model, restored) and restored_history == history
    assert isinstance(restored_optimizer, AdamW) and restored_optimizer.parameters[0] is restored.parameters()[0]
    assert (restored_optimizer.lr, restored_optimizer.betas, restored_optimizer.weight_decay) == (2e-3, (0.8, 0.95), 0.05)
    assert restored_optimizer.step_count == 5
    for a, b in zip(optimizer.v, restored_optimizer.v): np.testing.assert_array_equal(a, b)
    assert load(tmp_path / "c.npz").config == model.config          # a checkpoint is also a model file


def test_load_checkpoint_refusals(saved, tmp_path):
    model, path = saved
    with pytest.raises(ValueError, match="no optimizer state: it was written by save"):
        load_checkpoint(path)
    save_checkpoint(model, SGD(model.parameters(), lr=0.1), tmp_path / "c.npz", History())
    for change, message in [
        (lambda a: a | {"optimizer": np.array('{"type": "Adagrad"}')}, "unknown optimizer type 'Adagrad'"),
        (lambda a: {k: v for k, v in a.items() if k != "optimizer/velocity/0"}, "optimizer buffers are missing"),
        (lambda a: a | {"random_state": np.array('{"bit_generator": "PCG64"}')}, "invalid checkpoint"),
        (lambda a: a | {"history": np.array('{"colour": 1}')}, "invalid checkpoint"),
    ]:
        manual_seed(3); before = layers._rng.bit_generator.state
        with pytest.raises(ValueError, match=message):
            load_checkpoint(rewrite(tmp_path / "c.npz", tmp_path / "bad.npz", change))
        assert layers._rng.bit_generator.state == before          # nothing restored from a bad file
    whole = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[:-40])
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_checkpoint(tmp_path / "cut.npz")


def test_keep_freed_memory_on_this_system():
    result = keep_freed_memory()
    assert isinstance(result, bool)
    if sys.platform.startswith('linux') and platform.libc_ver()[0] == 'glibc':
        assert result is True
    assert keep_freed_memory() is result                  # calling it again changes nothing


def test_keep_freed_memory_does_nothing_without_glibc(monkeypatch):
    monkeypatch.setattr(train_module.sys, 'platform', 'darwin')
    assert keep_freed_memory() is False                   # macOS: not glibc's malloc


def test_keep_freed_memory_never_raises(monkeypatch):
    class NotGlibc:                                       # a C library without glibc's functions (musl)
        def __getattr__(self, name): raise AttributeError(name)
    monkeypatch.setattr(train_module.sys, 'platform', 'linux')
    monkeypatch.setattr(train_module.ctypes, 'CDLL', lambda name: NotGlibc())
    assert keep_freed_memory() is False
    def no_library(name): raise OSError("cannot load the C library")
    monkeypatch.setattr(train_module.ctypes, 'CDLL', no_library)
    assert keep_freed_memory() is False


def test_keep_freed_memory_reports_a_refused_setting(monkeypatch):
    class OldGlibc:                                       # mallopt returns 0 when it refuses a value
        def gnu_get_libc_version(self): return b'2.17'
        def mallopt(self, parameter, value): return 0
    monkeypatch.setattr(train_module.sys, 'platform', 'linux')
    monkeypatch.setattr(train_module.ctypes, 'CDLL', lambda name: OldGlibc())
    assert keep_freed_memory() is False
