"""Tokenizers: what keras-hub lacks around its own, for the data pipeline and the CLI.

Models carry keras-hub tokenizers and preprocessors (`BertTokenizer`,
`EncT5Tokenizer`, ...), and the data pipeline and the command line tool work
on those objects directly. What stays here is what keras-hub has no function
for:

- training a SentencePiece vocabulary on the spot (`train_sentencepiece`,
  the demo) and computing a WordPiece vocabulary with BERT's special tokens
  first (`compute_wordpiece_vocabulary`);
- keras-hub tokenizers for a bare WordPiece vocabulary or SentencePiece
  model with BERT's or T5's special tokens (`wordpiece_tokenizer`,
  `sentencepiece_tokenizer`: the `tokenizer.json` files that earlier
  versions wrote beside their `.keras` checkpoints hold those);
- the role of each special id of any keras-hub tokenizer (`special_tokens`:
  the ids the packer puts around texts, and every special id; keras-hub's
  generic tokenizers name none, and the SentencePiece ones keep pad, bos
  and control pieces in the model proto only);
- `detokenize`, which drops padding and, on request, the special tokens but
  keeps `[UNK]` visible and writes special pieces out (keras-hub's own
  SentencePiece detokenizer decodes them to nothing), to show projected
  sentences.
"""

import dataclasses
import io
import os

import numpy as np
import tensorflow as tf


def keras_hub_tokenizer(tokenizer):
    """The keras-hub tokenizer of a keras-hub tokenizer or preprocessor.

    Raises:
        ValueError: for anything else, naming what was given.
    """
    import keras_hub  # Deferred: importing keras-hub takes seconds.

    if isinstance(tokenizer, keras_hub.models.Preprocessor):
        tokenizer = getattr(tokenizer, "tokenizer", None)
    if not isinstance(tokenizer, keras_hub.tokenizers.Tokenizer):
        raise ValueError(
            "`tokenizer` must be a keras-hub tokenizer (`keras_hub.tokenizers.Tokenizer`) or "
            "a keras-hub preprocessor with one (`keras_hub.models.TextClassifierPreprocessor`). "
            f"Received: {type(tokenizer).__name__}"
        )
    return tokenizer


def is_preprocessor(tokenizer):
    """Whether `tokenizer` is a keras-hub preprocessor (it packs texts itself)."""
    import keras_hub

    return isinstance(tokenizer, keras_hub.models.Preprocessor)


def vocabulary_size(tokenizer):
    """The number of ids of a keras-hub tokenizer or preprocessor."""
    return int(keras_hub_tokenizer(tokenizer).vocabulary_size())


# === Special tokens ===
@dataclasses.dataclass(frozen=True)
class SpecialTokens:
    """The special ids of a tokenizer, by role.

    Attributes:
        pad: id of the padding token.
        unk: id of the unknown token, or `None`.
        start: id put before the first text (`[CLS]`, `<s>`), or `None` when
            texts are packed T5-style (`a </s> b </s>`).
        end: id put after each text (`[SEP]`, or `</s>`).
        mask: id of `[MASK]` / `<mask>`, or `None`.
        ids: sorted tuple of every special id (these, keras-hub's
            `special_token_ids`, SentencePiece's bos and control pieces).
    """

    pad: int
    unk: int | None
    start: int | None
    end: int
    mask: int | None
    ids: tuple


def _first_id(tokenizer, index, attributes, tokens):
    for name in attributes:
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return next((index[t] for t in tokens if t in index), None)


def special_tokens(tokenizer):
    """The `SpecialTokens` of a keras-hub tokenizer or preprocessor.

    Model tokenizers (`BertTokenizer`, `T5Tokenizer`, ...) name their
    special tokens; generic ones are read from the vocabulary (`[PAD]`,
    `[CLS]`, `[SEP]`, ...) and, for SentencePiece, from the model proto
    (pad, unk, bos, eos and control pieces). A SentencePiece model with
    `[CLS]` and `[SEP]` pieces packs BERT-style, one without T5-style.

    Raises:
        ValueError: when the tokenizer has no padding token or no token to
            close a text with.
    """
    tokenizer = keras_hub_tokenizer(tokenizer)
    vocabulary = tokenizer.get_vocabulary()
    index = {}
    for i, token in enumerate(vocabulary):
        index.setdefault(token, i)
    ids = {int(i) for i in tokenizer.special_token_ids if i is not None}
    proto = {}
    if getattr(tokenizer, "proto", None) is not None:
        sp = _sentencepiece_processor(tokenizer.proto)
        proto = {name: getattr(sp, f"{name}_id")() for name in ("pad", "unk", "bos", "eos")}
        proto = {name: int(i) for name, i in proto.items() if i >= 0}
        ids |= set(proto.values()) | {i for i in range(sp.get_piece_size()) if sp.is_control(i)}
    pad = _first_id(tokenizer, index, ("pad_token_id",), ("[PAD]", "<pad>"))
    pad = proto.get("pad", pad) if pad is None else pad
    unk = _first_id(tokenizer, index, ("unk_token_id",), ("[UNK]", "<unk>"))
    unk = proto.get("unk", unk) if unk is None else unk
    start = _first_id(tokenizer, index, ("cls_token_id", "start_token_id"), ("[CLS]",))
    end = _first_id(tokenizer, index, ("sep_token_id", "end_token_id"), ("[SEP]",))
    if end is None:
        end = proto.get("eos", index.get("</s>"))
    mask = _first_id(tokenizer, index, ("mask_token_id",), ("[MASK]", "<mask>"))
    if pad is None:
        raise ValueError(
            f"The {type(tokenizer).__name__} has no padding token ([PAD], <pad>, or a "
            "SentencePiece pad piece); padding needs one. Train SentencePiece models with "
            "`pad_id=0` (as `train_sentencepiece` does)."
        )
    if end is None:
        raise ValueError(
            f"The {type(tokenizer).__name__} has neither a [SEP] token nor an end of "
            "sentence token (</s>); texts cannot be packed."
        )
    ids |= {i for i in (pad, unk, start, end, mask) if i is not None}
    return SpecialTokens(pad, unk, start, end, mask, tuple(sorted(ids)))


# === Readable text ===
def detokenize(tokenizer, token_ids, skip_special_tokens=False):
    """Readable text from token ids; padding is always dropped.

    Args:
        tokenizer: a keras-hub tokenizer or preprocessor.
        token_ids: ids of one sequence (`[L]`: list, numpy array or eager
            tensor) or of a batch (`[B, L]`, or a list of lists).
        skip_special_tokens: also drop the special tokens ([CLS], [SEP],
            `</s>`, [MASK], ...) except the unknown token, which stays
            visible.

    Returns:
        A str for one sequence, a list of str for a batch.

    Example:
    ```python
    tokenizer = wordpiece_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "man"])
    detokenize(tokenizer, [2, 4, 5, 3, 0])  # '[CLS] a man [SEP]'
    detokenize(tokenizer, [2, 4, 5, 3, 0], skip_special_tokens=True)  # 'a man'
    ```
    """
    tokenizer = keras_hub_tokenizer(tokenizer)
    return _detokenize(tokenizer, special_tokens(tokenizer), token_ids, skip_special_tokens)


def _detokenize(tokenizer, specials, token_ids, skip_special_tokens):
    if isinstance(token_ids, (tf.Tensor, tf.RaggedTensor)):
        token_ids = token_ids.to_list() if isinstance(token_ids, tf.RaggedTensor) else token_ids.numpy()
    if isinstance(token_ids, np.ndarray):
        token_ids = token_ids.tolist()
    if isinstance(token_ids, (int, np.integer)):
        raise ValueError("`token_ids` must be a sequence of ids, not a single id.")
    token_ids = list(token_ids)
    if token_ids and isinstance(token_ids[0], (list, tuple, np.ndarray)):
        return [_detokenize(tokenizer, specials, row, skip_special_tokens) for row in token_ids]
    ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    size = tokenizer.vocabulary_size()
    bad = ids[(ids < 0) | (ids >= size)]
    if bad.size:
        raise ValueError(
            f"Token ids must be in [0, {size}). "
            f"Received out-of-range ids: {sorted(set(bad.tolist()))[:10]}"
        )
    shown = set(specials.ids) - {specials.unk}
    # Runs of ordinary ids decode with keras-hub; special ids (which its
    # SentencePiece detokenizer decodes to nothing) are written as their token.
    words, run = [], []
    for i in (int(i) for i in ids if int(i) != specials.pad):
        if i in shown:
            words.append(_decode(tokenizer, run))
            run = []
            if not skip_special_tokens:
                words.append(tokenizer.id_to_token(i))
        else:
            run.append(i)
    words.append(_decode(tokenizer, run))
    return " ".join(w for w in words if w)


def _decode(tokenizer, ids):
    if not ids:
        return ""
    text = tokenizer.detokenize(ids)
    text = text.numpy() if hasattr(text, "numpy") else text
    text = text.item() if isinstance(text, np.ndarray) else text
    return (text.decode("utf-8") if isinstance(text, bytes) else str(text)).strip()


# === Tokenizers keras-hub builds only from a preset ===
def wordpiece_tokenizer(vocabulary, lowercase=True):
    """A keras-hub WordPiece tokenizer on a BERT vocabulary.

    `keras_hub.tokenizers.WordPieceTokenizer` with `[UNK]` for unknown
    words and BERT's special tokens kept whole. With `lowercase=True`
    (uncased BERT models) texts are lowercased and accents stripped, as
    BERT's own tokenizer does. The vocabulary must contain `[PAD]`, `[UNK]`,
    `[CLS]` and `[SEP]`; `[MASK]` is used when present.

    Args:
        vocabulary: list of token strings (id = position), or the path of a
            BERT `vocab.txt` (one token per line).
        lowercase: whether to lowercase and strip accents (uncased models).

    Returns:
        A `keras_hub.tokenizers.WordPieceTokenizer`.

    Example:
    ```python
    tokenizer = wordpiece_tokenizer("model/vocab.txt", lowercase=True)
    detokenize(tokenizer, tokenizer("The movie was great!"))  # 'the movie was great !'
    ```
    """
    import keras_hub

    if isinstance(vocabulary, (str, os.PathLike)):
        vocabulary = read_vocabulary_file(vocabulary)
    vocabulary = list(vocabulary)
    if not vocabulary or not all(isinstance(t, str) for t in vocabulary):
        raise ValueError("`vocabulary` must be a non-empty list of str or a vocab file path.")
    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if t not in vocabulary]
    if missing:
        raise ValueError(
            f"The WordPiece vocabulary lacks the special tokens {missing}; "
            "it must contain [PAD], [UNK], [CLS] and [SEP] (and may contain [MASK])."
        )
    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocabulary,
        lowercase=bool(lowercase),
        strip_accents=bool(lowercase),
        oov_token="[UNK]",
        special_tokens=[t for t in BERT_RESERVED_TOKENS if t in vocabulary],
    )


def sentencepiece_tokenizer(proto):
    """A keras-hub SentencePiece tokenizer of a model with a pad piece.

    Args:
        proto: the serialized model (`bytes`) or the path of a `.model`
            file.

    Returns:
        A `keras_hub.tokenizers.SentencePieceTokenizer`; `special_tokens`
        reads its roles (BERT-style packing when the model has `[CLS]` and
        `[SEP]` pieces, T5-style otherwise).

    Example:
    ```python
    tokenizer = sentencepiece_tokenizer("spiece.model")
    detokenize(tokenizer, tokenizer("A man plays a flute."))
    ```
    """
    import keras_hub

    if isinstance(proto, (str, os.PathLike)):
        path = os.fspath(proto)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"SentencePiece model file not found: {path}")
        with open(path, "rb") as f:
            proto = f.read()
    if not isinstance(proto, (bytes, bytearray)):
        raise ValueError(
            "`proto` must be the serialized SentencePiece model (bytes) or a "
            f"path to a .model file. Received: {type(proto).__name__}"
        )
    tokenizer = keras_hub.tokenizers.SentencePieceTokenizer(proto=bytes(proto))
    vocabulary = tokenizer.get_vocabulary()
    if "[CLS]" in vocabulary and "[SEP]" not in vocabulary:
        raise ValueError("The SentencePiece model has a [CLS] piece but no [SEP] piece.")
    special_tokens(tokenizer)  # Refuses a model without a pad or an end piece.
    return tokenizer


def copy_tokenizer(tokenizer):
    """A new keras-hub tokenizer with the same vocabulary, whose ops are created anew.

    keras-hub's `get_config` leaves the vocabulary out (it is saved as an
    asset), so the copy gets it back from the original.
    """
    config = tokenizer.get_config()
    if getattr(tokenizer, "proto", None) is not None:
        config["proto"] = tokenizer.proto
    else:
        config["vocabulary"] = tokenizer.get_vocabulary()
    return type(tokenizer).from_config(config)


def _sentencepiece_processor(proto):
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(proto)
    return processor


BERT_RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def compute_wordpiece_vocabulary(texts, vocabulary_size, lowercase=True):
    """A WordPiece vocabulary learned from texts, BERT's special tokens first.

    keras-hub's `compute_word_piece_vocabulary` (TensorFlow Text's
    vocabulary learner) on the texts; ids 0-4 are `[PAD]`, `[UNK]`, `[CLS]`,
    `[SEP]`, `[MASK]`. On a small corpus most words become single tokens,
    so projected sentences read as words.

    Args:
        texts: list of str or a `tf.data.Dataset` of strings, the training
            corpus.
        vocabulary_size: int, the largest vocabulary (it stops earlier when
            the corpus has fewer pieces).
        lowercase: whether to lowercase and strip accents (uncased).

    Returns:
        A list of token strings (id = position).
    """
    import keras_hub

    if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) or vocabulary_size < 10:
        raise ValueError(f"`vocabulary_size` must be an int >= 10. Received: {vocabulary_size!r}")
    if isinstance(texts, tf.data.Dataset):
        # A dataset of strings (e.g. `TextDataset.texts()`): streamed, never listed.
        dataset = texts.filter(lambda t: tf.strings.length(t) > 0)
        if next(iter(dataset.take(1)), None) is None:
            raise ValueError("Cannot compute a WordPiece vocabulary from no text.")
    else:
        texts = [t for t in texts if t]
        if not texts:
            raise ValueError("Cannot compute a WordPiece vocabulary from no text.")
        dataset = tf.data.Dataset.from_tensor_slices(texts)
    return list(keras_hub.tokenizers.compute_word_piece_vocabulary(
        dataset.batch(256), vocabulary_size, lowercase=lowercase, strip_accents=lowercase,
        reserved_tokens=list(BERT_RESERVED_TOKENS),
    ))


def bert_preprocessor(vocabulary, sequence_length, lowercase=True):
    """A keras-hub BERT text-classifier preprocessor on a WordPiece vocabulary."""
    import keras_hub

    if isinstance(vocabulary, (str, os.PathLike)):
        vocabulary = read_vocabulary_file(vocabulary)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=list(vocabulary), lowercase=lowercase)
    return keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)


def read_vocabulary_file(path):
    """Reads a WordPiece vocabulary file: one token per line, id = line index."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f]


def train_sentencepiece(
    texts,
    vocabulary_size,
    model_type="unigram",
    special_tokens=("[CLS]", "[SEP]", "[MASK]"),
    lowercase=False,
    seed_sentencepiece_size=None,
):
    """Trains a SentencePiece model in memory and returns its tokenizer.

    Ids 0-3 are `<pad>`, `<unk>`, `<s>`, `</s>`, then `special_tokens`. The
    vocabulary stops below `vocabulary_size` when the corpus has too few
    distinct pieces to fill it. Takes well under a second for a few
    thousand sentences.

    Args:
        texts: iterable of str, the training corpus.
        vocabulary_size: int, the wanted vocabulary size (an upper bound).
        model_type: `"unigram"`, `"bpe"`, `"word"` or `"char"`.
        special_tokens: extra symbols that are never split; with `[CLS]` and
            `[SEP]` texts are packed BERT-style, with `()` T5-style.
        lowercase: whether to lowercase the texts (training and tokenizing).
        seed_sentencepiece_size: optional size of the unigram seed
            vocabulary (SentencePiece's default is 1,000,000).

    Returns:
        A `keras_hub.tokenizers.SentencePieceTokenizer`.

    Example:
    ```python
    texts, _, _ = load_glue("sst2", "train", glue_dir)
    tokenizer = train_sentencepiece(texts[:5000], vocabulary_size=1000)
    ```
    """
    import sentencepiece

    if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int):
        raise ValueError(f"`vocabulary_size` must be an int. Received: {vocabulary_size!r}")
    special_tokens = list(special_tokens)
    minimum = 4 + len(special_tokens) + 1
    if vocabulary_size < minimum:
        raise ValueError(
            f"`vocabulary_size` must be at least {minimum} (4 reserved pieces, "
            f"{len(special_tokens)} special tokens and one piece). Received: {vocabulary_size}"
        )
    allowed_types = ("unigram", "bpe", "word", "char")
    if model_type not in allowed_types:
        raise ValueError(f"`model_type` must be one of {allowed_types}. Received: {model_type!r}")
    if isinstance(texts, str):
        raise ValueError("`texts` must be an iterable of str, not a single str.")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("`texts` holds no non-empty text to train on.")
    model = io.BytesIO()
    options = dict(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocabulary_size,
        hard_vocab_limit=False,
        model_type=model_type,
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        user_defined_symbols=special_tokens,
        normalization_rule_name="nmt_nfkc_cf" if lowercase else "nmt_nfkc",
        minloglevel=2,
    )
    if seed_sentencepiece_size is not None:
        options["seed_sentencepiece_size"] = int(seed_sentencepiece_size)
    sentencepiece.SentencePieceTrainer.train(**options)
    return sentencepiece_tokenizer(model.getvalue())
