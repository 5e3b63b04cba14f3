"""Tiny keras-hub text classifiers of every family, with tokenizers built here.

Each family gets a random backbone (2 layers, hidden 16) and a real keras-hub
tokenizer of its own kind (WordPiece, SentencePiece or byte-pair) built from
the small corpus below, so preprocessing, saving and serving run as they do
for pretrained presets.
"""

import io

import keras
import numpy as np
import tensorflow as tf

WORDS = (
    "the a movie film was is great good bad awful fun boring plot actors "
    "loved hated it and but not very really story ending music scenes"
).split()
SENTENCES = [
    "the movie was great",
    "a boring film",
    "the plot is not good",
    "really fun and very good",
    "awful ending but great music",
    "i loved it",
    "the actors hated the story",
    "the scenes were very boring",
]
POSITIVE = {"great", "good", "fun", "loved"}
FAMILIES = ("albert", "bert", "deberta_v3", "distil_bert", "f_net", "roberta", "roformer_v2", "xlm_roberta",
            "enct5")
SEQUENCE_LENGTH = 12


def labeled_texts(n=32, seed=0):
    """`n` short sentences from `WORDS` and a label: whether a positive word occurs."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(2, 7))))
        texts.append(" ".join(words))
        labels.append(int(any(w in POSITIVE for w in words)))
    return texts, np.asarray(labels, "int32")


def _sentencepiece(pad, unk, user_symbols, xlm=False, t5=False):
    import sentencepiece

    corpus = SENTENCES + [" ".join(WORDS)] * 4
    model = io.BytesIO()
    ids = dict(unk_id=0, bos_id=1, eos_id=2, pad_id=-1) if xlm else dict(
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece=pad, unk_piece=unk
    )
    if t5:  # T5's layout: <pad> 0, </s> 1, <unk> 2, no <s>.
        ids = dict(pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>",
                   unk_piece="<unk>")
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        vocab_size=60,
        model_type="word",
        user_defined_symbols=list(user_symbols),
        hard_vocab_limit=False,
        **ids,
    )
    return model.getvalue()


def _wordpiece():
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "were"] + WORDS


def _byte_pair():
    """A byte-pair vocabulary in which every word of `WORDS` is one token."""
    vocabulary = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    merges = []
    letters = sorted(set("".join(WORDS + ["i", "were"])))
    for piece in letters + ["Ġ"] + ["Ġ" + c for c in letters]:
        vocabulary.setdefault(piece, len(vocabulary))
    for word in WORDS + ["i", "were"]:
        for form in (word, "Ġ" + word):
            for end in range(2, len(form) + 1):
                left, right = form[: end - 1], form[end - 1]
                merge = f"{left} {right}"
                if merge not in merges:
                    merges.append(merge)
                vocabulary.setdefault(form[:end], len(vocabulary))
    vocabulary["<mask>"] = len(vocabulary)
    return vocabulary, merges


def tokenizer(family):
    """The family's keras-hub tokenizer on a small vocabulary."""
    import keras_hub

    m = keras_hub.models
    if family in ("bert", "distil_bert", "roformer_v2"):
        cls = {"bert": m.BertTokenizer, "distil_bert": m.DistilBertTokenizer,
               "roformer_v2": m.RoformerV2Tokenizer}[family]
        return cls(vocabulary=_wordpiece(), lowercase=True)
    if family == "roberta":
        vocabulary, merges = _byte_pair()
        return m.RobertaTokenizer(vocabulary=vocabulary, merges=merges)
    if family == "xlm_roberta":
        return m.XLMRobertaTokenizer(proto=_sentencepiece(None, None, ["<mask>"], xlm=True))
    if family == "enct5":
        from augpro_keras.models import EncT5Tokenizer

        return EncT5Tokenizer(proto=_sentencepiece(None, None, [], t5=True))
    if family == "deberta_v3":
        return m.DebertaV3Tokenizer(proto=_sentencepiece("[PAD]", "[UNK]", ["[CLS]", "[SEP]", "[MASK]"]))
    cls = {"albert": m.AlbertTokenizer, "f_net": m.FNetTokenizer}[family]
    return cls(proto=_sentencepiece("<pad>", "<unk>", ["[CLS]", "[SEP]", "[MASK]"]))


_CLASSES = {
    "albert": ("AlbertBackbone", "AlbertTextClassifierPreprocessor", "AlbertTextClassifier"),
    "bert": ("BertBackbone", "BertTextClassifierPreprocessor", "BertTextClassifier"),
    "deberta_v3": ("DebertaV3Backbone", "DebertaV3TextClassifierPreprocessor", "DebertaV3TextClassifier"),
    "distil_bert": ("DistilBertBackbone", "DistilBertTextClassifierPreprocessor", "DistilBertTextClassifier"),
    "f_net": ("FNetBackbone", "FNetTextClassifierPreprocessor", "FNetTextClassifier"),
    "roberta": ("RobertaBackbone", "RobertaTextClassifierPreprocessor", "RobertaTextClassifier"),
    "roformer_v2": ("RoformerV2Backbone", "RoformerV2TextClassifierPreprocessor", "RoformerV2TextClassifier"),
    "xlm_roberta": ("XLMRobertaBackbone", "XLMRobertaTextClassifierPreprocessor", "XLMRobertaTextClassifier"),
    # The package's own keras-hub-style task (keras-hub has no T5 classifier).
    "enct5": ("EncT5Backbone", "EncT5TextClassifierPreprocessor", "EncT5TextClassifier"),
}


def backbone_kwargs(family, vocabulary_size, num_layers=2, hidden_dim=16):
    kwargs = dict(vocabulary_size=vocabulary_size, num_layers=num_layers, hidden_dim=hidden_dim,
                  intermediate_dim=2 * hidden_dim, dropout=0.0)
    if family != "f_net":
        kwargs["num_heads"] = 2
    if family == "albert":
        kwargs["embedding_dim"] = 8
    if family == "deberta_v3":
        kwargs["bucket_size"] = 8
    if family == "roformer_v2":
        kwargs["head_size"] = 8
    elif family == "enct5":
        kwargs["activation"] = "gelu"  # T5 1.1 (no position embeddings, no length limit)
    else:
        kwargs["max_sequence_length"] = 32
    return kwargs


def task(family, num_classes=2, seed=0, num_layers=2, hidden_dim=16, tokenizer_=None, dropout=0.0):
    """A tiny keras-hub `TextClassifier` of `family` with its preprocessor."""
    import keras_hub

    from augpro_keras import models

    backbone_name, preprocessor_name, task_name = _CLASSES[family]
    module = models if family == "enct5" else keras_hub.models
    # Seed first: seeding TensorFlow drops the resources of SentencePiece
    # tokenizers built before it in eager mode.
    keras.utils.set_random_seed(seed)
    tokenizer_ = tokenizer_ or tokenizer(family)
    backbone = getattr(module, backbone_name)(
        **backbone_kwargs(family, tokenizer_.vocabulary_size(), num_layers, hidden_dim)
    )
    preprocessor = getattr(module, preprocessor_name)(
        tokenizer=tokenizer_, sequence_length=SEQUENCE_LENGTH
    )
    return getattr(module, task_name)(
        backbone=backbone, preprocessor=preprocessor, num_classes=num_classes, dropout=dropout
    )


def text_dataset(n=32, batch_size=8, seed=0, labeled=True, pairs=False):
    """A batched `tf.data` dataset of raw strings (pairs when asked) and labels."""
    texts, labels = labeled_texts(n, seed)
    x = (texts, texts[::-1]) if pairs else texts
    data = (x, labels) if labeled else x
    if pairs and not labeled:
        data = (x,)
    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size, drop_remainder=True)
