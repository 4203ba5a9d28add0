"""Tests for causal_attention.data: the tiny book, the tokenizer and LLMDataset."""
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from causal_attention.data import (
    Dataset, LLMDataset, Tokenizer, join_tokens, load_text, make_windows, split_tokens, tinybook_path)

TEN_WORDS = "one two three four five six seven eight nine ten"  # 10 tokens: 9 train, 1 validation


@pytest.fixture(scope="module")
def book():
    return load_text(tinybook_path())


@pytest.fixture(scope="module")
def book_tokenizer(book):
    return Tokenizer.from_text(book)


@pytest.fixture(scope="module")
def stream(book):
    "The book's tokens as ids, computed here without the Tokenizer class."
    tokens = re.findall(r"""[,.:;?_!"()']|[^\s,.:;?_!"()']+""", book.lower())
    vocabulary = sorted(set(tokens)) + ["<|eos|>", "<|unk|>"]
    return np.array([vocabulary.index(t) for t in tokens])


# ---------------------------------------------------------------- the tiny book and load_text

def test_tinybook_size_and_encoding(book):
    assert 20_000 <= len(book) <= 30_000
    assert book.isascii()
    assert tinybook_path().read_bytes().decode("utf-8") == book


def test_tinybook_path_from_another_working_directory(tmp_path, monkeypatch, book):
    monkeypatch.chdir(tmp_path)
    path = tinybook_path()
    assert isinstance(path, Path) and path.is_absolute() and path.is_file()
    assert path.name == "tinybook.txt"
    assert load_text(path) == book
    assert len(LLMDataset(path, context_size=8).ids) > 0


def test_load_text_missing_file(tmp_path):
    missing = tmp_path / "nowhere" / "book.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_text(missing)
    with pytest.raises(FileNotFoundError, match="no such text file"):
        load_text(str(missing))


def test_load_text_directory_is_not_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        load_text(tmp_path)


def test_load_text_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9 au lait".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt.*not UTF-8"):
        load_text(path)


@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_load_text_empty(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty\.txt.*empty"):
        load_text(path)


def test_load_text_reads_utf8(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("Caf\u00e9 \u2014 ok", encoding="utf-8")
    assert load_text(path) == "Caf\u00e9 \u2014 ok"


# ---------------------------------------------------------------- splitting and joining

@pytest.mark.parametrize("text, tokens", [
    ("Hello, World!", ["hello", ",", "world", "!"]),
    ('"Yes," she said.', ['"', "yes", ",", '"', "she", "said", "."]),
    ("Tom's (blue) boat:  _very_ small; isn't it?",
     ["tom", "'", "s", "(", "blue", ")", "boat", ":", "_", "very", "_", "small", ";", "isn", "'", "t", "it", "?"]),
    ("well-known  \n\t words...", ["well-known", "words", ".", ".", "."]),
    ("", []),
])
def test_split_tokens(text, tokens):
    assert split_tokens(text) == tokens
    assert Tokenizer.split(text) == tokens


def test_split_tokens_needs_str():
    with pytest.raises(TypeError, match="expected text as a str, got bytes"):
        split_tokens(b"bytes")


@pytest.mark.parametrize("sentence", [
    '"good morning, fox," said mara.',
    "the fox took one loaf. then he ran back into the wood!",
    "tom's boat (the small blue one) is by the bridge.",
    'she asked: "where is the bread?" and he said: "here; take it."',
    "it is _very_ cold today, isn't it?",
])
def test_join_inverts_split_on_sentences(sentence):
    assert join_tokens(split_tokens(sentence)) == sentence


# ---------------------------------------------------------------- Tokenizer

def test_vocabulary_is_sorted_with_special_tokens_last(book, book_tokenizer):
    words = book_tokenizer.vocabulary[:-2]
    assert words == sorted(set(words)) and len(words) == len(set(split_tokens(book)))
    assert book_tokenizer.vocabulary[-2:] == ["<|eos|>", "<|unk|>"]
    assert book_tokenizer.vocabulary_size == len(book_tokenizer.vocabulary)
    assert book_tokenizer.eos_id == book_tokenizer.vocabulary_size - 2
    assert book_tokenizer.unk_id == book_tokenizer.vocabulary_size - 1
    assert all(book_tokenizer.token_to_id[t] == i for i, t in enumerate(book_tokenizer.vocabulary))
    assert 600 <= book_tokenizer.vocabulary_size <= 1_200


def test_tokenizer_from_vocabulary_list():
    tokenizer = Tokenizer(["b", "a", "."])
    assert tokenizer.vocabulary == ["b", "a", ".", "<|eos|>", "<|unk|>"]
    assert tokenizer.encode("A b. C") == [1, 0, 2, 4]
    assert tokenizer.decode([1, 0, 2, 3]) == "a b. <|eos|>"
    assert Tokenizer(["<|unk|>", "x", "<|eos|>"]).unk_id == 0


def test_tokenizer_bad_vocabulary():
    with pytest.raises(ValueError, match="duplicate tokens: \\['a'\\]"):
        Tokenizer(["a", "b", "a"])
    with pytest.raises(TypeError, match="non-empty str, got 3"):
        Tokenizer(["a", 3])
    with pytest.raises(TypeError, match="non-empty str, got ''"):
        Tokenizer(["a", ""])


def test_encode(book_tokenizer, book, stream):
    assert book_tokenizer.encode(book) == stream.tolist()
    unk = book_tokenizer.unk_id
    ids = book_tokenizer.encode("The fox ate a pizza with Zorro.")
    assert ids[4] == unk and ids[6] == unk and ids.count(unk) == 2
    assert book_tokenizer.encode("<|eos|>") == [book_tokenizer.eos_id]
    with pytest.raises(TypeError, match="got list"):
        book_tokenizer.encode(["fox"])


@pytest.mark.parametrize("sentence", [
    '"good evening, light," said old ben. "keep the boats safe tonight."',
    "mara woke before the sun.",
    "tom's mother came to the bakery: she was afraid.",
    '"where is the sixth loaf?" said mara.',
])
def test_round_trip_sentences(book_tokenizer, sentence):
    assert book_tokenizer.decode(book_tokenizer.encode(sentence)) == sentence


@pytest.mark.parametrize("sentence", [
    "the fox (the red one) took one loaf; he was hungry!",
    'she said: "it is _very_ cold, isn\'t it?" (and it was.)',
])
def test_round_trip_all_punctuation(sentence):
    tokenizer = Tokenizer.from_text(sentence)
    assert tokenizer.decode(tokenizer.encode(sentence)) == sentence
    assert tokenizer.decode(tokenizer.encode(sentence.upper().replace(" ", "  "))) == sentence


def test_round_trip_every_paragraph_of_the_book(book, book_tokenizer):
    for paragraph in book.split("\n\n"):
        normalised = " ".join(paragraph.lower().split())
        assert book_tokenizer.decode(book_tokenizer.encode(paragraph)) == normalised


def test_decode_accepts_numpy(book_tokenizer):
    ids = book_tokenizer.encode("the fox ran.")
    for array in (np.array(ids), np.array(ids, dtype=np.int32), np.array(ids, dtype=np.uint16)):
        assert book_tokenizer.decode(array) == "the fox ran."
    assert book_tokenizer.decode([np.int64(i) for i in ids]) == "the fox ran."
    assert book_tokenizer.decode([]) == ""


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_encode_inverts_decode(book_tokenizer, data):
    ids = data.draw(st.lists(st.integers(0, book_tokenizer.vocabulary_size - 1), max_size=40))
    assert book_tokenizer.encode(book_tokenizer.decode(ids)) == ids


@pytest.mark.parametrize("bad_id", [-1, "V", "V+5"])
def test_decode_id_outside_vocabulary(book_tokenizer, bad_id):
    V = book_tokenizer.vocabulary_size
    bad = {"V": V, "V+5": V + 5}.get(bad_id, bad_id)
    message = rf"id {bad} is outside the vocabulary.*vocabulary_size={V}"
    with pytest.raises(ValueError, match=message):
        book_tokenizer.decode([0, bad])
    with pytest.raises(ValueError, match=message):
        book_tokenizer.decode(np.array([bad, 0]))


@pytest.mark.parametrize("ids, message", [
    ([0, 1.0], "ids must be integers, got 1.0 of type float"),
    ([True], "ids must be integers, got True of type bool"),
    (["fox"], "ids must be integers, got 'fox' of type str"),
    ([None], "ids must be integers, got None"),
    (np.array([0.0, 1.0]), "ids must be integers, got dtype float64"),
    (3, "sequence of integer ids, got int 3"),
    ("the fox", "sequence of integer ids, got str"),
])
def test_decode_non_integer_ids(book_tokenizer, ids, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        book_tokenizer.decode(ids)


def test_decode_needs_one_dimension(book_tokenizer):
    with pytest.raises(ValueError, match=re.escape("1-D array of ids, got shape (2, 2)")):
        book_tokenizer.decode(np.zeros((2, 2), dtype=np.int64))


# ---------------------------------------------------------------- make_windows

@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 60), context_size=st.integers(1, 20), stride=st.integers(1, 10))
def test_make_windows_against_a_loop(n, context_size, stride):
    ids = np.arange(100, 100 + n)
    if n < context_size + 1:
        with pytest.raises(ValueError, match=f"at least context_size \\+ 1 = {context_size + 1} tokens, got {n}"):
            make_windows(ids, context_size, stride)
        return
    inputs, targets = make_windows(ids, context_size, stride)
    starts = [s for s in range(0, n, stride) if s + context_size + 1 <= n]
    assert inputs.tolist() == [ids[s:s + context_size].tolist() for s in starts]
    assert targets.tolist() == [ids[s + 1:s + context_size + 1].tolist() for s in starts]
    assert inputs.dtype == targets.dtype == np.int64
    assert inputs.flags.writeable and inputs.base is None  # own copies, not views of `ids`


def test_make_windows_bad_arguments():
    with pytest.raises(ValueError, match="context_size must be at least 1, got 0"):
        make_windows(np.arange(10), 0)
    with pytest.raises(ValueError, match="stride must be at least 1, got 0"):
        make_windows(np.arange(10), 2, stride=0)
    with pytest.raises(TypeError, match="stride must be an integer, got 1.5"):
        make_windows(np.arange(10), 2, stride=1.5)
    with pytest.raises(ValueError, match=re.escape("1-D sequence, got shape (2, 5)")):
        make_windows(np.zeros((2, 5), dtype=np.int64), 2)


# ---------------------------------------------------------------- Dataset

def test_dataset_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        Dataset()


def test_dataset_subclass_gets_iteration():
    class Squares(Dataset):
        def load(self, source): return list(source)
        def train_validation_split(self, data): return data[:3], data[3:]
        def __len__(self): return 3
        def __getitem__(self, index): return index * index
    assert list(Squares()) == [0, 1, 4]


# ---------------------------------------------------------------- LLMDataset: arguments

@pytest.mark.parametrize("name", ["context_size", "stride", "batch_size"])
@pytest.mark.parametrize("value", [0, -3])
def test_counts_below_one(name, value):
    kwargs = {"context_size": 2, name: value}
    with pytest.raises(ValueError, match=f"{name} must be at least 1, got {value}"):
        LLMDataset(TEN_WORDS, **kwargs)


@pytest.mark.parametrize("name", ["context_size", "stride", "batch_size"])
def test_counts_must_be_integers(name):
    kwargs = {"context_size": 2, name: 2.5}
    with pytest.raises(TypeError, match=f"{name} must be an integer, got 2.5"):
        LLMDataset(TEN_WORDS, **kwargs)


def test_unknown_split():
    with pytest.raises(ValueError, match="split must be 'train' or 'validation', got 'test'"):
        LLMDataset(TEN_WORDS, context_size=2, split="test")


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, float("nan")])
def test_validation_fraction_out_of_range(fraction):
    with pytest.raises(ValueError, match=f"validation_fraction must be between 0 and 1, got {fraction}"):
        LLMDataset(TEN_WORDS, context_size=2, validation_fraction=fraction)


def test_validation_fraction_must_be_a_number():
    with pytest.raises(TypeError, match="validation_fraction must be a number, got '0.1'"):
        LLMDataset(TEN_WORDS, context_size=2, validation_fraction="0.1")
    assert len(LLMDataset(TEN_WORDS, context_size=2, validation_fraction=np.float32(0.5)).ids) == 5


def test_bad_seed_epoch_and_tokenizer():
    with pytest.raises(ValueError, match="seed must be at least 0, got -1"):
        LLMDataset(TEN_WORDS, context_size=2, seed=-1)
    with pytest.raises(TypeError, match="tokenizer must be a Tokenizer or None, got dict"):
        LLMDataset(TEN_WORDS, context_size=2, tokenizer={})
    ds = LLMDataset(TEN_WORDS, context_size=2)
    with pytest.raises(ValueError, match="epoch must be at least 0, got -1"):
        ds.set_epoch(-1)


def test_too_few_tokens_in_a_split():
    with pytest.raises(ValueError, match="the train split has 9 tokens, but context_size=9 needs at least 10"):
        LLMDataset(TEN_WORDS, context_size=9)
    assert len(LLMDataset(TEN_WORDS, context_size=8).inputs) == 1
    with pytest.raises(ValueError, match="the validation split has 1 tokens, but context_size=1 needs at least 2"):
        LLMDataset(TEN_WORDS, context_size=1, split="validation")


def test_index_errors():
    ds = LLMDataset(TEN_WORDS, context_size=2, batch_size=4)  # 9 train tokens -> 7 windows -> 2 batches
    assert len(ds) == 2
    with pytest.raises(IndexError, match="batch index 2 is out of range for 2 batches"):
        ds[2]
    with pytest.raises(IndexError, match="batch index -3 is out of range for 2 batches"):
        ds[-3]
    with pytest.raises(TypeError, match="batch index must be an integer, got 0.5"):
        ds[0.5]
    np.testing.assert_array_equal(ds[-1][0], ds[1][0])


# ---------------------------------------------------------------- LLMDataset: path or text

def test_path_or_text_rule(tmp_path, monkeypatch):
    story = tmp_path / "story.txt"
    story.write_text(TEN_WORDS + "\n", encoding="utf-8")
    from_text = LLMDataset(TEN_WORDS, context_size=2)
    for source in (story, str(story)):  # a Path, and a one-line str naming an existing file
        np.testing.assert_array_equal(LLMDataset(source, context_size=2).inputs, from_text.inputs)
    monkeypatch.chdir(tmp_path)
    np.testing.assert_array_equal(LLMDataset("story.txt", context_size=2).inputs, from_text.inputs)
    # a str with a line break is text, even if its first line names a file
    ds = LLMDataset(f"{story}\n{TEN_WORDS}", context_size=2)
    assert ds.tokenizer.vocabulary_size > from_text.tokenizer.vocabulary_size
    # a str naming no file is text: here too short for the context
    with pytest.raises(ValueError, match="the train split has 3 tokens, but context_size=5"):
        LLMDataset("missing.txt", context_size=5)  # tokens: missing . txt
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        LLMDataset(tmp_path / "missing.txt", context_size=2)


def test_long_one_line_text_is_text():
    text = " ".join(["the fox ran over the bridge ."] * 100)  # no line break, longer than any file name
    assert len(LLMDataset(text, context_size=4).ids) == round(0.9 * 700)


def test_bad_sources():
    with pytest.raises(TypeError, match="expected a Path or a str, got bytes"):
        LLMDataset(b"the fox", context_size=2)
    with pytest.raises(ValueError, match="the text is empty"):
        LLMDataset(" \n ", context_size=2)


# ---------------------------------------------------------------- LLMDataset: split and windows

@pytest.mark.parametrize("stride", [1, 3, 32])
@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_split_boundary_and_shift(book, stream, stride, fraction):
    T = 32
    train = LLMDataset(book, context_size=T, stride=stride, validation_fraction=fraction, shuffle=False)
    validation = LLMDataset(book, context_size=T, stride=stride, validation_fraction=fraction,
                            split="validation", tokenizer=train.tokenizer, shuffle=False)
    n_train = len(train.ids)
    assert abs(n_train - (1 - fraction) * len(stream)) <= 1
    np.testing.assert_array_equal(np.concatenate([train.ids, validation.ids]), stream)
    for ds, offset, end in ((train, 0, n_train), (validation, n_train, len(stream))):
        assert ds.ids.dtype == ds.inputs.dtype == ds.targets.dtype == np.int64
        N = len(ds.inputs)
        assert ds.inputs.shape == ds.targets.shape == (N, T)
        starts = offset + stride * np.arange(N)
        assert starts[-1] + T + 1 <= end  # the last window (targets included) stays inside its split
        assert starts[-1] + stride + T + 1 > end  # and no further window would fit
        for k, s in enumerate(starts):
            np.testing.assert_array_equal(ds.inputs[k], stream[s:s + T])
            np.testing.assert_array_equal(ds.targets[k], stream[s + 1:s + T + 1])


def test_tokenizer_built_from_whole_text_unless_given(book, book_tokenizer):
    train = LLMDataset(book, context_size=8)
    validation = LLMDataset(book, context_size=8, split="validation")
    assert train.tokenizer.vocabulary == validation.tokenizer.vocabulary == book_tokenizer.vocabulary
    shared = LLMDataset(book, context_size=8, split="validation", tokenizer=train.tokenizer)
    assert shared.tokenizer is train.tokenizer
    small = Tokenizer(["the", "fox"])
    ds = LLMDataset("The fox and the cat.", context_size=2, tokenizer=small, validation_fraction=0.34)
    assert ds.ids.tolist() == [0, 1, small.unk_id, 0]


# ---------------------------------------------------------------- LLMDataset: batches and shuffling

def rows_sorted(a):
    return a[np.lexsort(a.T[::-1])]


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_batches_cover_every_window_once(book, batch_size):
    ds = LLMDataset(book, context_size=16, stride=5, batch_size=batch_size)
    N = len(ds.inputs)
    assert len(ds) == math.ceil(N / batch_size)
    batches = list(ds)
    assert len(batches) == len(ds)
    sizes = [len(x) for x, _ in batches]
    assert sizes[:-1] == [batch_size] * (len(ds) - 1) and sizes[-1] == N - batch_size * (len(ds) - 1)
    for x, y in batches:
        assert x.shape == y.shape == (len(x), 16) and x.dtype == y.dtype == np.int64
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    pairs = np.concatenate([np.concatenate([x, y], axis=1) for x, y in batches])
    expected = np.concatenate([ds.inputs, ds.targets], axis=1)
    np.testing.assert_array_equal(rows_sorted(pairs), rows_sorted(expected))


def test_shuffle_is_seeded_and_changes_with_the_epoch(book):
    def first_batches(ds): return np.concatenate([ds[i][0] for i in range(3)])
    a = LLMDataset(book, context_size=8, batch_size=4, seed=7)
    b = LLMDataset(book, context_size=8, batch_size=4, seed=7)
    c = LLMDataset(book, context_size=8, batch_size=4, seed=8)
    epoch0 = first_batches(a)
    np.testing.assert_array_equal(epoch0, first_batches(b))
    assert not np.array_equal(epoch0, first_batches(c))
    assert not np.array_equal(epoch0, a.inputs[:12])  # shuffled, not text order
    a.set_epoch(1)
    b.set_epoch(1)
    epoch1 = first_batches(a)
    assert not np.array_equal(epoch0, epoch1)
    np.testing.assert_array_equal(epoch1, first_batches(b))
    a.set_epoch(0)
    np.testing.assert_array_equal(first_batches(a), epoch0)


def test_no_shuffle_keeps_text_order(book):
    ds = LLMDataset(book, context_size=8, batch_size=5, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in ds]), ds.inputs)
    ds.set_epoch(3)
    np.testing.assert_array_equal(ds[0][1], ds.targets[:5])
