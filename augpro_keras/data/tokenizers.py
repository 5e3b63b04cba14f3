"""Tokenizers: what keras-hub lacks around its own, for the data pipeline and the CLI.

Models carry keras-hub tokenizers and preprocessors (`BertTokenizer`,
`EncT5Tokenizer`, ...). What stays here is what keras-hub has no function
for: training a SentencePiece vocabulary on the spot (`train_sentencepiece`,
the demo) and computing a WordPiece vocabulary with BERT's special tokens
first (`compute_wordpiece_vocabulary`); and, for `TextPacker` and the command
line tool, a `TextTokenizer` view of a tokenizer (the ids the packer puts
around texts, every special id, and a `detokenize` that drops padding and,
on request, special tokens but keeps `[UNK]` visible, to show projected
sentences), including the two JSON tokenizers (`WordPieceTextTokenizer`,
`SentencePieceTextTokenizer`) of `tokenizer.json` files that earlier
versions wrote beside their `.keras` checkpoints. Each wraps a keras-hub
tokenizer (TensorFlow path, so it runs inside `tf.data`).
"""

import base64
import io
import os

import numpy as np
import tensorflow as tf

from augpro_keras.api_export import export


class TextTokenizer:
    """Base class: text to token ids and back.

    Subclasses set `self._layer` (a keras-hub tokenizer) and the special
    token ids. `tokenize` (also `__call__`) takes:

    - a Python `str`: returns a list of ints;
    - a list of `str`: returns a list of lists of ints;
    - a string `tf.Tensor`: inside `tf.data` or a `tf.function`, returns an
      int32 tensor (scalar input) or `tf.RaggedTensor` (batch); eagerly,
      Python lists as above.

    Tokenization always runs keras-hub's TensorFlow path, so eager and
    `tf.data` results are the same.

    Attributes:
        vocabulary_size: number of token ids.
        pad_token_id: id of the padding token.
        unk_token_id: id of the unknown token.
        cls_token_id: id put before the first text (`[CLS]`), or `None` when
            texts are packed T5-style (`a </s> b </s>`).
        sep_token_id: id put after each text (`[SEP]`, or `</s>`).
        mask_token_id: id of `[MASK]`, or `None`.
        special_token_ids: sorted tuple of every special id (pad, cls/bos,
            sep/eos, unk, mask and other control symbols).
    """

    pad_token_id = None
    unk_token_id = None
    cls_token_id = None
    sep_token_id = None
    mask_token_id = None

    @property
    def vocabulary_size(self):
        return len(self._vocabulary)

    @property
    def special_token_ids(self):
        return tuple(sorted(self._special_token_ids))

    @property
    def keras_hub_tokenizer(self):
        """The wrapped keras-hub tokenizer layer."""
        return self._layer

    def get_vocabulary(self):
        """List of the token strings, indexed by id."""
        return list(self._vocabulary)

    def id_to_token(self, token_id):
        """The token string of an id."""
        self._check_ids(np.asarray([token_id]))
        return self._vocabulary[int(token_id)]

    def token_to_id(self, token):
        """The id of a token string (an error when it is not in the vocabulary)."""
        if token not in self._token_ids:
            raise ValueError(f"Token {token!r} is not in the vocabulary.")
        return self._token_ids[token]

    def tokenize(self, texts):
        """Token ids of a text or a batch of texts (see the class docstring)."""
        if isinstance(texts, (list, tuple, np.ndarray)):
            texts = list(texts.tolist() if isinstance(texts, np.ndarray) else texts)
            if not all(isinstance(t, (str, bytes)) for t in texts):
                raise ValueError(
                    "`texts` must be a str, a list of str or a string tensor. "
                    f"Received a list holding {sorted({type(t).__name__ for t in texts})}."
                )
            if not texts:
                return []
        elif isinstance(texts, (tf.Tensor, tf.RaggedTensor)):
            if texts.dtype != tf.string:
                raise ValueError(
                    f"`texts` must be a string tensor. Received dtype {texts.dtype.name}."
                )
        elif not isinstance(texts, str):
            raise ValueError(
                "`texts` must be a str, a list of str or a string tensor. "
                f"Received: {type(texts).__name__}"
            )
        texts = tf.constant(texts) if isinstance(texts, (str, list)) else texts
        try:
            token_ids = self._layer(texts)
        except tf.errors.NotFoundError:
            # `tf.random.set_seed` (and `keras.utils.set_random_seed`) clear
            # TensorFlow's eager caches, which frees the resource of an op
            # created eagerly (SentencePiece's). Build the layer again.
            self._layer = type(self).from_config(self.get_config())._layer
            token_ids = self._layer(texts)
        if not tf.executing_eagerly() and isinstance(token_ids, (tf.Tensor, tf.RaggedTensor)):
            return token_ids  # Inside tf.data / tf.function.
        return _to_python(token_ids)

    __call__ = tokenize

    def detokenize(self, token_ids, skip_special_tokens=False):
        """Readable text from token ids; padding is always dropped.

        Args:
            token_ids: ids of one sequence (`[L]`: list, numpy array or
                eager tensor) or of a batch (`[B, L]`, or a list of lists).
            skip_special_tokens: also drop the special tokens ([CLS], [SEP],
                `</s>`, [MASK], ...) except the unknown token, which stays
                visible.

        Returns:
            A str for one sequence, a list of str for a batch.
        """
        if isinstance(token_ids, (tf.Tensor, tf.RaggedTensor)):
            token_ids = _to_python(token_ids)
        if isinstance(token_ids, np.ndarray):
            token_ids = token_ids.tolist()
        if isinstance(token_ids, (int, np.integer)):
            raise ValueError("`token_ids` must be a sequence of ids, not a single id.")
        token_ids = list(token_ids)
        if token_ids and isinstance(token_ids[0], (list, tuple, np.ndarray)):
            return [self.detokenize(row, skip_special_tokens) for row in token_ids]
        ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
        self._check_ids(ids)
        dropped = {self.pad_token_id}
        if skip_special_tokens:
            dropped |= set(self._special_token_ids) - {self.unk_token_id}
        return self._ids_to_text([int(i) for i in ids if int(i) not in dropped])

    def _check_ids(self, ids):
        bad = ids[(ids < 0) | (ids >= self.vocabulary_size)]
        if bad.size:
            raise ValueError(
                f"Token ids must be in [0, {self.vocabulary_size}). "
                f"Received out-of-range ids: {sorted(set(bad.tolist()))[:10]}"
            )

    def _ids_to_text(self, ids):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (
            f"{type(self).__name__}(vocabulary_size={self.vocabulary_size}, "
            f"pad={self.pad_token_id}, cls={self.cls_token_id}, sep={self.sep_token_id})"
        )


@export
class WordPieceTextTokenizer(TextTokenizer):
    """BERT's WordPiece tokenizer from a vocabulary.

    Wraps `keras_hub.tokenizers.WordPieceTokenizer`. With `lowercase=True`
    (uncased BERT models) texts are lowercased and accents stripped, as
    BERT's own tokenizer does. The vocabulary must contain `[PAD]`, `[UNK]`,
    `[CLS]` and `[SEP]`; `[MASK]` is used when present. Texts are packed as
    `[CLS] a [SEP] b [SEP]`.

    Args:
        vocabulary: list of token strings (id = position), or the path of a
            BERT `vocab.txt` (one token per line).
        lowercase: whether to lowercase and strip accents (uncased models).

    Example:
    ```python
    tokenizer = WordPieceTextTokenizer("model/vocab.txt", lowercase=True)
    ids = tokenizer.tokenize("The movie was great!")
    tokenizer.detokenize(ids)  # 'the movie was great !'
    ```
    """

    def __init__(self, vocabulary, lowercase=True):
        import keras_hub  # Deferred: importing keras-hub takes seconds.

        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = read_vocabulary_file(vocabulary)
        vocabulary = list(vocabulary)
        if not vocabulary or not all(isinstance(t, str) for t in vocabulary):
            raise ValueError("`vocabulary` must be a non-empty list of str or a vocab file path.")
        token_ids = {}
        for i, token in enumerate(vocabulary):
            token_ids.setdefault(token, i)
        missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if t not in token_ids]
        if missing:
            raise ValueError(
                f"The WordPiece vocabulary lacks the special tokens {missing}; "
                "it must contain [PAD], [UNK], [CLS] and [SEP] (and may contain [MASK])."
            )
        self._vocabulary = vocabulary
        self._token_ids = token_ids
        self.lowercase = bool(lowercase)
        self.pad_token_id = token_ids["[PAD]"]
        self.unk_token_id = token_ids["[UNK]"]
        self.cls_token_id = token_ids["[CLS]"]
        self.sep_token_id = token_ids["[SEP]"]
        self.mask_token_id = token_ids.get("[MASK]")
        specials = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t in token_ids]
        self._special_token_ids = {token_ids[t] for t in specials}
        self._layer = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=vocabulary,
            lowercase=self.lowercase,
            strip_accents=self.lowercase,
            oov_token="[UNK]",
            special_tokens=specials,
            _allow_python_workflow=False,
        )

    def _ids_to_text(self, ids):
        text = " ".join(self._vocabulary[i] for i in ids)
        return text.replace(" ##", "")

    def get_config(self):
        return {"vocabulary": list(self._vocabulary), "lowercase": self.lowercase}


class PreprocessorTextTokenizer(TextTokenizer):
    """A keras-hub text-classifier preprocessor as a `TextTokenizer`.

    For keras-hub teachers the task's own preprocessor (tokenizer and
    packer) is the tokenizer of a run: `TextPacker` then packs with it, so
    every family gets its own layout (`[CLS] a [SEP] b [SEP]` for BERT,
    `<s> a </s></s> b </s>` for RoBERTa, ...) and its own ids (XLM-RoBERTa
    shifts SentencePiece ids by one). It has no JSON form: it lives in the
    preset folders that keras-hub writes.

    Args:
        preprocessor: a `keras_hub.models.TextClassifierPreprocessor`.

    Example:
    ```python
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
        "bert_tiny_en_uncased", sequence_length=64)
    tokenizer = PreprocessorTextTokenizer(preprocessor)
    tokenizer.detokenize(tokenizer.tokenize("A great movie."))
    ```
    """

    def __init__(self, preprocessor):
        tokenizer = getattr(preprocessor, "tokenizer", None)
        if tokenizer is None:
            raise ValueError(
                "`preprocessor` must be a keras-hub preprocessor with a tokenizer. "
                f"Received: {type(preprocessor).__name__}"
            )
        self.preprocessor = preprocessor
        self._layer = tokenizer
        self._vocabulary = list(tokenizer.get_vocabulary())
        self._token_ids = {}
        for i, token in enumerate(self._vocabulary):
            self._token_ids.setdefault(token, i)
        self.pad_token_id = tokenizer.pad_token_id
        self.unk_token_id = getattr(tokenizer, "unk_token_id", None)
        if self.unk_token_id is None:
            self.unk_token_id = next(
                (self._token_ids[t] for t in ("[UNK]", "<unk>") if t in self._token_ids), None
            )
        self.cls_token_id = getattr(tokenizer, "start_token_id", None)
        self.sep_token_id = getattr(tokenizer, "end_token_id", None)
        self.mask_token_id = getattr(tokenizer, "mask_token_id", None)
        ids = {self.pad_token_id, self.unk_token_id, self.cls_token_id, self.sep_token_id,
               self.mask_token_id, *tokenizer.special_token_ids}
        self._special_token_ids = {int(i) for i in ids if i is not None}

    @property
    def sequence_length(self):
        return self.preprocessor.sequence_length

    def pack(self, texts_a, texts_b=None):
        """The preprocessor's model inputs of texts (or text pairs)."""
        x = texts_a if texts_b is None else (texts_a, texts_b)
        # `x=`: a tuple passed alone would be read as `(x, y)`.
        return self.preprocessor(x=x)

    def _ids_to_text(self, ids):
        text = self._layer.detokenize(ids)
        text = text.numpy() if hasattr(text, "numpy") else text
        return text.decode("utf-8") if isinstance(text, bytes) else str(text)

    def get_config(self):
        # Not JSON: the same preprocessor object, so that `from_config`
        # (used to make graph-local copies of other tokenizers) returns it.
        return {"preprocessor": self.preprocessor}


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


def _to_python(token_ids):
    """Ids as Python ints in (nested) lists."""
    if isinstance(token_ids, tf.RaggedTensor):
        return token_ids.to_list()
    if isinstance(token_ids, (tf.Tensor, np.ndarray, np.integer)):
        return np.asarray(token_ids).tolist()
    if isinstance(token_ids, int):
        return token_ids
    return [_to_python(row) for row in token_ids]


def read_vocabulary_file(path):
    """Reads a WordPiece vocabulary file: one token per line, id = line index."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f]


def _sentencepiece_processor(proto):
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(proto)
    return processor


@export
class SentencePieceTextTokenizer(TextTokenizer):
    """A SentencePiece tokenizer (T5 and similar models, or one trained here).

    Wraps `keras_hub.tokenizers.SentencePieceTokenizer`. The model must have
    a pad piece. When it holds `[CLS]` and `[SEP]` pieces (as
    `train_sentencepiece` adds by default), texts are packed BERT-style as
    `[CLS] a [SEP] b [SEP]`; otherwise T5-style as `a </s> b </s>` (the end
    of sentence piece closes each text). `[MASK]` or `<mask>` is the mask
    token when present. Special ids: pad, unk, bos, eos, cls, sep, mask and
    every other control piece.

    Args:
        proto: the serialized model (`bytes`) or the path of a `.model`
            file.

    Example:
    ```python
    tokenizer = SentencePieceTextTokenizer("spiece.model")
    tokenizer.detokenize(tokenizer.tokenize("A man plays a flute."))
    ```
    """

    def __init__(self, proto):
        import keras_hub  # Deferred: importing keras-hub takes seconds.

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
        self.proto = bytes(proto)
        sp = _sentencepiece_processor(self.proto)
        self._processor = sp
        self._vocabulary = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
        self._token_ids = {piece: i for i, piece in enumerate(self._vocabulary)}

        def optional_id(value):
            return None if value < 0 else int(value)

        if sp.pad_id() < 0:
            raise ValueError(
                "The SentencePiece model has no pad piece (pad_id=-1); padding needs "
                "one. Train it with `pad_id=0` (as `train_sentencepiece` does)."
            )
        self.pad_token_id = int(sp.pad_id())
        self.unk_token_id = int(sp.unk_id())
        self.bos_token_id = optional_id(sp.bos_id())
        self.eos_token_id = optional_id(sp.eos_id())
        self.cls_token_id = self._token_ids.get("[CLS]")
        self.sep_token_id = self._token_ids.get("[SEP]", self.eos_token_id)
        if self.cls_token_id is not None and "[SEP]" not in self._token_ids:
            raise ValueError("The SentencePiece model has a [CLS] piece but no [SEP] piece.")
        if self.sep_token_id is None:
            raise ValueError(
                "The SentencePiece model has neither a [SEP] piece nor an end of "
                "sentence piece (eos_id=-1); texts cannot be packed."
            )
        self.mask_token_id = self._token_ids.get("[MASK]", self._token_ids.get("<mask>"))
        ids = {
            self.pad_token_id, self.unk_token_id, self.bos_token_id, self.eos_token_id,
            self.cls_token_id, self.sep_token_id, self.mask_token_id,
        }
        ids |= {i for i in range(len(self._vocabulary)) if sp.is_control(i)}
        self._special_token_ids = {i for i in ids if i is not None}
        self._layer = keras_hub.tokenizers.SentencePieceTokenizer(
            proto=self.proto, _allow_python_workflow=False
        )

    def _ids_to_text(self, ids):
        # Runs of ordinary pieces decode with SentencePiece; special pieces
        # (which it would decode to nothing) are written as their piece.
        words, run = [], []
        for i in ids:
            if i in self._special_token_ids and i != self.unk_token_id:
                if run:
                    words.append(self._processor.decode(run).strip())
                    run = []
                words.append(self._vocabulary[i])
            else:
                run.append(i)
        if run:
            words.append(self._processor.decode(run).strip())
        return " ".join(w for w in words if w)

    def get_config(self):
        return {"proto": base64.b64encode(self.proto).decode("ascii")}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("proto"), str):
            config["proto"] = base64.b64decode(config["proto"])
        return cls(**config)


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
        A `SentencePieceTextTokenizer`.

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
    return SentencePieceTextTokenizer(model.getvalue())
