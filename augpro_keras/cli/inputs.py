"""Data of a run: examples, tokenizer, `tf.data` pipelines and metrics.

The splits are `TextDataset`s: strings and labels in `tf.data` from the
source (TFDS, or the file read line by line) to the batch, tokenized in
the pipeline; subsets, label names and label checks are `tf.data`
operations or the loaders' streaming checks, never lists of the whole
training set. Every dataset here has static shapes (`drop_remainder=True`
and a fixed sequence length), as XLA and TPUs need. Evaluation sets are
padded to whole batches with copies of their first example, and the
padding rows are cut off the predictions, so no example is left out.

Example:
```python
data = load_task_data(config)
tokenizer = build_tokenizer(config, data.train.texts_a)
train = train_dataset(data.train, tokenizer, config)
dev, n = eval_dataset(data.validation, tokenizer, config)
```
"""

import base64
import binascii
import dataclasses
import json
import math
import os

import numpy as np

from augpro_keras import metrics as metrics_lib
from augpro_keras.data import TextExamples
from augpro_keras.data import demo
from augpro_keras.data import glue
from augpro_keras.data import tokenizers
from augpro_keras.data import tsv
from augpro_keras.data.preprocessing import batch_text_dataset
from augpro_keras.data.preprocessing import graph_tokenizer
from augpro_keras.data.text_dataset import TextDataset


class InputError(ValueError):
    """A bad input file or option; the message names it, where, and what is allowed.

    The command line tool reports it as one paragraph and exits with status 2.
    """


@dataclasses.dataclass
class TaskData:
    """The examples of a run and what the task is.

    Attributes:
        name: display name ("demo", "SST-2", a file name).
        train: labeled examples for fine-tuning (teacher, FT student), a
            `TextDataset`.
        distill: examples for distillation (a `TextDataset`); `labels` is
            `None` in the unlabeled (Table 2) setting.
        validation: labeled validation examples (a `TextDataset`).
        label_names: class names, or `None` (regression, or unnamed).
        num_classes: model outputs (1 for regression).
        is_regression: whether labels are float scores.
        metrics: metric names, the first one selects the best model.
        glue_task: the `GlueTask`, or `None`.
        warnings: problems of the data that the config accepts (printed).
    """

    name: str
    train: TextDataset
    distill: TextDataset
    validation: TextDataset
    label_names: tuple | None
    num_classes: int
    is_regression: bool
    metrics: tuple
    glue_task: object = None
    warnings: tuple = ()

    @property
    def is_pair(self):
        return self.train.is_pair


def _load_splits(config):
    data = config["data"]
    if data["source"] == "demo":
        return "demo", demo.demo_dataset("train"), demo.demo_dataset("validation"), None
    if data["source"] == "glue":
        task = glue.get_glue_task(data["task"])
        train = glue.glue_dataset(task, "train", data["glue_dir"])
        validation = glue.glue_dataset(task, task.splits[1], data["glue_dir"])
        return task.display_name, train, validation, task
    train = _read_file(data, "train_file")
    validation = _read_file(data, "validation_file")
    if data["label_names"] is None:
        train, validation = _common_label_names(data, train, validation)
    return os.path.basename(data["train_file"]), train, validation, None


def _read_file(data, key, label_names=None):
    try:
        return tsv.text_classification_dataset(
            data[key], text_columns=data["text_columns"], label_column=data["label_column"],
            label_names=label_names or data["label_names"])
    except (ValueError, FileNotFoundError) as error:
        raise InputError(f"data.{key}: {error}") from None


def _label_kind(examples):
    if examples.label_names is not None:
        return "names"
    return "scores" if examples.is_regression else "class ids"


def _common_label_names(data, train, validation):
    """Both files read with one label mapping (string labels: the training file's order)."""
    kinds = _label_kind(train), _label_kind(validation)
    if kinds == ("scores", "class ids"):
        return train, validation.with_float_labels()
    if kinds[0] != kinds[1]:
        raise InputError(
            f"data.validation_file: the labels of {data['validation_file']} are {kinds[1]} "
            f"but those of data.train_file ({data['train_file']}) are {kinds[0]}; both files "
            "must label "
            "examples the same way (class ids 0, 1, ..., names, or float scores)."
        )
    if kinds[0] != "names":
        return train, validation
    extra = sorted(set(validation.label_names) - set(train.label_names))
    names = list(train.label_names) + extra
    return train, _read_file(data, "validation_file", label_names=names)


def _unseen_validation_labels(data, train, validation, label_names):
    """The warning (or error) for validation labels that training never has."""
    unseen = sorted(set(validation.distinct_labels()) - set(train.distinct_labels()))
    if not unseen:
        return None
    shown = [label_names[i] if label_names else i for i in unseen]
    where = ""
    if data["source"] == "files":
        line = tsv.first_line_with_label(data["validation_file"], data["label_column"],
                                         str(shown[0]))
        where = f" (first: {data['validation_file']}, line {line})" if line else ""
    text = (f"validation labels {shown}{where} never occur in the training data, so no "
            "model can learn them")
    if not data["allow_unseen_validation_labels"]:
        raise InputError(
            f"data: {text}. Fix the files (a typo in a label?), or set "
            "data.allow_unseen_validation_labels: true to train and evaluate anyway (those "
            "examples then count as errors)."
        )
    return f"{text}; they count as errors (data.allow_unseen_validation_labels: true)."


def load_task_data(config):
    """Loads the examples a config names and derives the task's properties.

    Raises:
        InputError: a file that cannot be read as the config says, with the
            file, line and what is allowed; too few examples; validation
            labels that training never has (unless the config accepts them).
    """
    data = config["data"]
    try:
        name, train, validation, task = _load_splits(config)
    except InputError:
        raise
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        raise InputError(str(error)) from None
    seed = config["seed"]
    # The subsets of `splits` (the same examples for a seed as for lists), as
    # `tf.data` filters over the examples' positions.
    if data["max_train_examples"] and train.num_examples > data["max_train_examples"]:
        train = train.take_fraction(data["max_train_examples"] / train.num_examples, seed)
    if data["max_validation_examples"] and validation.num_examples > data["max_validation_examples"]:
        validation = validation.take_fraction(
            data["max_validation_examples"] / validation.num_examples, seed
        )
    if task is not None:
        is_regression, num_classes, label_names = task.is_regression, task.num_classes, task.label_names
        metric_names = task.metrics
    else:
        is_regression = train.is_regression
        label_names = train.label_names if validation.label_names is None else validation.label_names
        num_classes = 1 if is_regression else (
            len(label_names) if label_names
            else max(train.distinct_labels() + validation.distinct_labels()) + 1
        )
        if is_regression:
            metric_names = ("pearson", "spearman")
        elif num_classes == 2:
            metric_names = ("accuracy", "f1")
        else:
            metric_names = ("accuracy",)
    all_train = train
    distill = train
    if data["labeled_fraction"] is not None:
        train, unlabeled = train.labeled_unlabeled_split(data["labeled_fraction"], seed)
        distill = unlabeled.without_labels()
    where = f" ({data['train_file']})" if data["source"] == "files" else ""
    for split, examples in (("training", train), ("distillation", distill)):
        if examples.num_examples < data["batch_size"]:
            raise InputError(
                f"The {split} set{where} has {examples.num_examples} examples, fewer than one "
                "batch "
                f"(data.batch_size={data['batch_size']}); lower data.batch_size."
            )
    warnings = []
    if not is_regression:
        if num_classes < 2:
            files = (f" of {data['train_file']} and {data['validation_file']}"
                     if data["source"] == "files" else "")
            raise InputError(
                f"data: every training and validation example{files} has the same label "
                f"({(label_names or all_train.distinct_labels())[0]!r}); a classifier needs at "
                "least two classes."
            )
        unseen = _unseen_validation_labels(data, all_train, validation, label_names)
        if unseen:
            warnings.append(unseen)
    return TaskData(name, train, distill, validation, label_names, num_classes,
                    is_regression, tuple(metric_names), task, tuple(warnings))


def compute_metrics(task_data, predictions, labels):
    """The task's metrics of predictions (logits or scores) against labels."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if task_data.glue_task is not None:
        return metrics_lib.glue_metrics(task_data.glue_task, predictions, labels)
    if task_data.is_regression:
        scores = predictions.reshape(len(predictions), -1)[:, 0]
        return {name: getattr(metrics_lib, name)(scores, labels) for name in task_data.metrics}
    ids = predictions.argmax(axis=-1)
    return {name: getattr(metrics_lib, name)(ids, labels) for name in task_data.metrics}


# --- tokenizers ---------------------------------------------------------------
def build_tokenizer(config, texts):
    """The tokenizer a config names: the run's keras-hub preprocessor.

    `wordpiece`: a BERT preprocessor on `vocabulary_file`, or on a
    vocabulary computed from `texts`; `preset`: the preprocessor of the
    teacher's preset.
    """
    spec = config["tokenizer"]
    sequence_length = config["data"]["sequence_length"]
    if spec["type"] == "wordpiece":
        vocabulary = spec["vocabulary_file"] or tokenizers.compute_wordpiece_vocabulary(
            texts, spec["vocabulary_size"], lowercase=spec["lowercase"])
        return tokenizers.bert_preprocessor(vocabulary, sequence_length, lowercase=spec["lowercase"])
    return preset_tokenizer(config["teacher"]["checkpoint"] or config["teacher"]["preset"],
                            sequence_length)


def preset_tokenizer(preset, sequence_length):
    """The `TextClassifierPreprocessor` of a keras-hub preset (name or folder)."""
    import keras_hub

    from augpro_keras.cli.config import resolve_preset

    return keras_hub.models.TextClassifierPreprocessor.from_preset(
        resolve_preset(preset), sequence_length=sequence_length
    )


# `tokenizer.json` beside a `.keras` checkpoint (written by earlier versions,
# whose models take token ids): the class names it used, and the keras-hub
# tokenizer each becomes. keras-hub keeps vocabularies as preset assets, so a
# bare tokenizer has no file of its own.
LEGACY_TOKENIZERS = {
    "SentencePieceTextTokenizer": lambda proto: tokenizers.sentencepiece_tokenizer(
        base64.b64decode(proto) if isinstance(proto, str) else proto),
    "WordPieceTextTokenizer": tokenizers.wordpiece_tokenizer,
}


def save_tokenizer(tokenizer, path):
    """Writes a bare keras-hub tokenizer as a `tokenizer.json` file (class and config)."""
    if getattr(tokenizer, "proto", None) is not None:
        spec = {"class": "SentencePieceTextTokenizer",
                "config": {"proto": base64.b64encode(tokenizer.proto).decode("ascii")}}
    else:
        spec = {"class": "WordPieceTextTokenizer",
                "config": {"vocabulary": list(tokenizer.get_vocabulary()),
                           "lowercase": bool(tokenizer.lowercase)}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f)


def load_tokenizer(path):
    """The keras-hub tokenizer of a `tokenizer.json` file (see `save_tokenizer`)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Tokenizer file not found: {path}. It is written beside every model the "
            "command line tool saves (tokenizer.json)."
        )
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except (UnicodeDecodeError, ValueError) as error:
        raise InputError(
            f"{path} is not a tokenizer file written by augpro-keras (JSON with the "
            f"tokenizer's class and config): {error}"
        ) from None
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise InputError(f"{path} is not a tokenizer file written by augpro-keras: expected "
                         "a JSON object with `class` and `config`.")
    if spec.get("class") not in LEGACY_TOKENIZERS:
        raise InputError(f"{path}: unknown tokenizer class {spec.get('class')!r}; expected one "
                         f"of {sorted(LEGACY_TOKENIZERS)}")
    try:
        return LEGACY_TOKENIZERS[spec["class"]](**spec["config"])
    except (TypeError, ValueError, KeyError, binascii.Error) as error:
        raise InputError(f"{path}: the {spec['class']} config cannot be read "
                         f"({type(error).__name__}: {error}); write the file again with "
                         "augpro-keras.") from None


# --- datasets -------------------------------------------------------------------
def check_batch_size(batch_size, num_replicas, key):
    if batch_size % num_replicas:
        raise InputError(
            f"{key}={batch_size} must be divisible by the {num_replicas} replicas of the "
            "strategy; change it."
        )


def train_dataset(examples, tokenizer, config, labeled=True):
    """Shuffled training batches of a fixed shape, from a `TextDataset` (or `TextExamples`)."""
    data = config["data"]
    examples = _as_text_dataset(examples)
    if not labeled:
        examples = examples.without_labels()
    return batch_text_dataset(
        examples, tokenizer, data["sequence_length"], data["batch_size"],
        shuffle=True, seed=config["seed"], drop_remainder=True,
    )


def eval_dataset(examples, tokenizer, config, with_labels=False):
    """Evaluation batches padded to whole batches; returns `(dataset, num_real)`."""
    batch = config["data"]["eval_batch_size"]
    examples = _as_text_dataset(examples)
    n = examples.num_examples
    total = max(1, math.ceil(n / batch)) * batch
    if not with_labels:
        examples = examples.without_labels()
    # Copies of the first example fill the last batch (cut off the predictions).
    padded = examples.dataset.concatenate(examples.dataset.take(1).repeat(total - n))
    examples = dataclasses.replace(examples, dataset=padded, num_examples=total)
    return batch_text_dataset(
        examples, tokenizer, config["data"]["sequence_length"], batch, drop_remainder=True,
    ), n


def _as_text_dataset(examples):
    return TextDataset.from_examples(examples) if isinstance(examples, TextExamples) else examples


def pack(examples, tokenizer, sequence_length):
    """Numpy model inputs of all examples (for small samples: `TextExamples`, or a
    small `TextDataset`, which this reads)."""
    from augpro_keras.data import TextPacker

    # A fresh copy: an eagerly used SentencePiece op loses its resource when
    # TensorFlow is re-seeded (`keras.utils.set_random_seed` clears caches).
    tokenizer = graph_tokenizer(tokenizer)
    packed = TextPacker(tokenizer, sequence_length)(
        list(examples.texts_a), None if examples.texts_b is None else list(examples.texts_b)
    )
    return {key: np.asarray(value) for key, value in packed.items()}
