"""The GLUE tasks: their descriptions and loaders (TFDS or local TSVs) into `tf.data`."""

import array
import dataclasses
import os
import shutil
import socket
import threading
import urllib.parse

from augpro_keras.data.examples import TextExamples
from augpro_keras.data.text_dataset import TextDataset
from augpro_keras.data.tsv import column_index
from augpro_keras.data.tsv import field
from augpro_keras.data.tsv import read_delimited_rows
from augpro_keras.data.tsv import tsv_rows


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """What a GLUE task is and where its data lives.

    Args:
        name: canonical name, e.g. `"sst2"`.
        display_name: the name used by GLUE, e.g. `"SST-2"`; also the folder
            name in the official layout.
        text_features: TFDS feature names of the text(s), e.g.
            `("premise", "hypothesis")`.
        label_names: class names in TFDS order (class id = position), or
            `None` for regression (STS-B).
        metrics: names of the metrics the paper reports, as computed by
            `augpro_keras.metrics.glue_metrics`.
        split_files: `(split, file name)` pairs of the official layout.
        tsv_text_columns: the text columns in the TSV files: header names, or
            positions when the files have no header (CoLA).
        tsv_label_column: the label column (header name or position).
        tsv_has_header: whether the TSV files start with a header row.

    Example:
    ```python
    task = get_glue_task("SST-2")
    task.tfds_name, task.num_classes, task.metrics
    # ('glue/sst2', 2, ('accuracy',))
    ```
    """

    name: str
    display_name: str
    text_features: tuple
    label_names: tuple | None
    metrics: tuple
    split_files: tuple
    tsv_text_columns: tuple
    tsv_label_column: object
    tsv_has_header: bool = True

    @property
    def tfds_name(self):
        """Name of the task in TensorFlow Datasets."""
        return f"glue/{self.name}"

    @property
    def is_regression(self):
        """Whether labels are float scores (STS-B) rather than class ids."""
        return self.label_names is None

    @property
    def num_classes(self):
        """Number of model outputs: the number of classes, 1 for regression."""
        return 1 if self.label_names is None else len(self.label_names)

    @property
    def is_pair(self):
        """Whether examples are text pairs."""
        return len(self.text_features) == 2

    @property
    def splits(self):
        """The split names `load_glue` accepts for this task."""
        return tuple(split for split, _ in self.split_files)

    def tsv_file(self, split):
        """File name of `split` inside the task's folder."""
        return dict(self.split_files)[_check_split(self, split)]


_TRAIN_DEV = (("train", "train.tsv"), ("validation", "dev.tsv"))

GLUE_TASKS = {
    task.name: task
    for task in (
        GlueTask(
            name="cola",
            display_name="CoLA",
            text_features=("sentence",),
            label_names=("unacceptable", "acceptable"),
            metrics=("matthews_corrcoef",),
            split_files=_TRAIN_DEV,
            # No header: source, label, original label, sentence.
            tsv_text_columns=(3,),
            tsv_label_column=1,
            tsv_has_header=False,
        ),
        GlueTask(
            name="sst2",
            display_name="SST-2",
            text_features=("sentence",),
            label_names=("negative", "positive"),
            metrics=("accuracy",),
            split_files=_TRAIN_DEV,
            tsv_text_columns=("sentence",),
            tsv_label_column="label",
        ),
        GlueTask(
            name="mrpc",
            display_name="MRPC",
            text_features=("sentence1", "sentence2"),
            label_names=("not_equivalent", "equivalent"),
            metrics=("accuracy", "f1"),
            split_files=_TRAIN_DEV,
            tsv_text_columns=("#1 String", "#2 String"),
            tsv_label_column="Quality",
        ),
        GlueTask(
            name="stsb",
            display_name="STS-B",
            text_features=("sentence1", "sentence2"),
            label_names=None,
            metrics=("pearson", "spearman"),
            split_files=_TRAIN_DEV,
            tsv_text_columns=("sentence1", "sentence2"),
            tsv_label_column="score",
        ),
        GlueTask(
            name="qqp",
            display_name="QQP",
            text_features=("question1", "question2"),
            label_names=("not_duplicate", "duplicate"),
            metrics=("accuracy", "f1"),
            split_files=_TRAIN_DEV,
            tsv_text_columns=("question1", "question2"),
            tsv_label_column="is_duplicate",
        ),
        GlueTask(
            name="mnli",
            display_name="MNLI",
            text_features=("premise", "hypothesis"),
            label_names=("entailment", "neutral", "contradiction"),
            metrics=("accuracy",),
            split_files=(
                ("train", "train.tsv"),
                ("validation_matched", "dev_matched.tsv"),
                ("validation_mismatched", "dev_mismatched.tsv"),
            ),
            tsv_text_columns=("sentence1", "sentence2"),
            tsv_label_column="gold_label",
        ),
        GlueTask(
            name="qnli",
            display_name="QNLI",
            text_features=("question", "sentence"),
            label_names=("entailment", "not_entailment"),
            metrics=("accuracy",),
            split_files=_TRAIN_DEV,
            tsv_text_columns=("question", "sentence"),
            tsv_label_column="label",
        ),
        GlueTask(
            name="rte",
            display_name="RTE",
            text_features=("sentence1", "sentence2"),
            label_names=("entailment", "not_entailment"),
            metrics=("accuracy",),
            split_files=_TRAIN_DEV,
            tsv_text_columns=("sentence1", "sentence2"),
            tsv_label_column="label",
        ),
        GlueTask(
            name="wnli",
            display_name="WNLI",
            text_features=("sentence1", "sentence2"),
            label_names=("not_entailment", "entailment"),
            metrics=("accuracy",),
            split_files=_TRAIN_DEV,
            tsv_text_columns=("sentence1", "sentence2"),
            tsv_label_column="label",
        ),
    )
}


def get_glue_task(name):
    """Returns the `GlueTask` for a name in any common spelling.

    Case, `-`, `_` and spaces are ignored: `"SST-2"`, `"sst2"`, `"sst-2"`,
    `"STS-B"`, `"stsb"` and `"glue/rte"` all work.

    Args:
        name: task name, or a `GlueTask` (returned as is).

    Example:
    ```python
    get_glue_task("STS-B").is_regression  # True
    ```
    """
    if isinstance(name, GlueTask):
        return name
    if not isinstance(name, str):
        raise ValueError(f"GLUE task name must be a string. Received: {name!r}")
    key = name.strip().lower()
    key = key.removeprefix("glue/")
    for char in "-_ ":
        key = key.replace(char, "")
    if key not in GLUE_TASKS:
        allowed = [task.display_name for task in GLUE_TASKS.values()]
        raise ValueError(f"Unknown GLUE task {name!r}. Allowed tasks: {allowed}")
    return GLUE_TASKS[key]


def _check_split(task, split):
    canonical = split
    if isinstance(split, str) and split.startswith("dev"):
        canonical = "validation" + split[len("dev"):]
    if canonical not in task.splits:
        raise ValueError(
            f"Unknown split {split!r} for GLUE task {task.display_name}. "
            f"Allowed splits: {list(task.splits)}"
        )
    return canonical


def _layout(task, glue_dir):
    files = ", ".join(
        os.path.join(str(glue_dir), task.display_name, file) for _, file in task.split_files
    )
    if task.tsv_has_header:
        columns = (
            f"a header row with columns {list(task.tsv_text_columns)} and "
            f"{task.tsv_label_column!r}"
        )
    else:
        columns = (
            f"no header; text at column {task.tsv_text_columns[0]} and label at "
            f"column {task.tsv_label_column} (0-based)"
        )
    return f"Expected the official GLUE layout: {files} ({columns})."


def _parse_label(task, raw, path, line_number):
    """A class id (names or ids in the file) or, for STS-B, a float score."""
    if task.is_regression:
        try:
            return float(raw)
        except ValueError:
            allowed = "a number"
    else:
        if raw in task.label_names:
            return task.label_names.index(raw)
        if raw.strip() in [str(i) for i in range(task.num_classes)]:
            return int(raw)
        allowed = f"{list(task.label_names)} or their ids 0..{task.num_classes - 1}"
    raise ValueError(
        f"{path}, line {line_number}: label {raw!r} is not valid for "
        f"{task.display_name}; expected {allowed}."
    )


def _tsv_dataset(task, split, glue_dir, collect=False):
    """A split's TSV file as a `TextDataset`: one streaming check, then `tf.data` reads it
    (`tsv_rows`).

    With `collect`, the check's pass returns the examples as `TextExamples` instead.
    """
    path = os.path.join(os.fspath(glue_dir), task.display_name, task.tsv_file(split))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"GLUE file not found: {path}. {_layout(task, glue_dir)}"
        )
    rows = read_delimited_rows(path, "\t")
    text_indices = list(task.tsv_text_columns)
    label_index = task.tsv_label_column
    names = [f"column {i}" for i in text_indices] + [f"column {label_index}"]
    if task.tsv_has_header:
        _, header = next(rows, (0, []))
        names = list(task.tsv_text_columns) + [task.tsv_label_column]
        try:
            text_indices = [column_index(header, c, path) for c in task.tsv_text_columns]
            label_index = column_index(header, task.tsv_label_column, path)
        except ValueError as e:
            raise ValueError(f"{e} {_layout(task, glue_dir)}") from None

    # The check: every row has its columns and a valid label (the file and
    # line of the first that does not); only the rows' line numbers are kept.
    line_numbers = array.array("q")
    columns, labels = [[] for _ in text_indices], []
    for line_number, fields in rows:
        texts = [field(fields, index, path, line_number, name)
                 for index, name in zip(text_indices, names)]
        label = _parse_label(task, field(fields, label_index, path, line_number, names[-1]),
                             path, line_number)
        line_numbers.append(line_number)
        if collect:
            for values, text in zip(columns, texts):
                values.append(text)
            labels.append(label)
    if collect:
        return TextExamples(columns[0], columns[1] if task.is_pair else None, labels,
                            task.label_names)
    to_label = _label_mapper(task)
    feature_names = ("texts_a", "texts_b")[:len(text_indices)]

    def element(*columns):
        return dict(zip(feature_names, columns)), to_label(columns[-1])

    dataset = tsv_rows(path, line_numbers, text_indices + [label_index], element)
    return TextDataset(dataset, len(line_numbers), task.label_names)


def _label_mapper(task):
    """`_parse_label` in TensorFlow, for labels that it accepted."""
    import tensorflow as tf

    if task.is_regression:
        return lambda raw: tf.strings.to_number(tf.strings.strip(raw), tf.float32)
    keys = list(task.label_names) + [str(i) for i in range(task.num_classes)]
    values = list(range(task.num_classes)) * 2
    names = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys[:task.num_classes]), tf.constant(values[:task.num_classes], tf.int32)), -1)
    ids = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys[task.num_classes:]), tf.constant(values[task.num_classes:], tf.int32)), -1)

    def to_label(raw):
        # A name as it is written, else an id (spaces around it allowed).
        by_name = names.lookup(raw)
        return tf.where(by_name >= 0, by_name, ids.lookup(tf.strings.strip(raw)))

    return to_label


def _reachable(host, timeout=10.0):
    """Whether a TCP connection to `host`:443 opens within `timeout` seconds (DNS included)."""
    result = []

    def connect():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _offline_message(task, split, reason):
    return (
        f"Could not load {task.tfds_name!r} split {split!r} with tensorflow_datasets: "
        f"{reason}. Without network access, download the GLUE data elsewhere and pass "
        f"--glue-dir DIR (config key data.glue_dir; Python: `glue_dir=`), the folder that "
        f"holds {task.display_name}/{task.tsv_file(split)}."
    )


def _load_tfds(task, split, data_dir=None):
    """A split from TFDS as a `TextDataset`; downloads it first when it is not prepared yet.

    Before a download, the download host is probed (10 s at most): without
    network the error comes at once (tfds itself retries for a long time),
    and a failed download removes the dataset folder it started.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(task.tfds_name, data_dir=data_dir)
    except Exception as e:  # noqa: BLE001  An unknown or broken dataset definition.
        raise RuntimeError(_offline_message(task, split, f"{type(e).__name__}: {e}")) from e
    prepared = builder.is_prepared()
    folder = os.path.dirname(builder.data_dir)  # <data_dir>/glue/<config>
    existed = os.path.exists(folder)
    if not prepared:
        url = getattr(builder.builder_config, "data_url", None) or "https://dl.fbaipublicfiles.com"
        host = urllib.parse.urlparse(url).hostname or "dl.fbaipublicfiles.com"
        if not _reachable(host):
            raise RuntimeError(_offline_message(
                task, split, f"it is not downloaded yet and {host} cannot be reached"))
    kwargs = {} if data_dir is None else {"data_dir": data_dir}
    try:
        dataset = tfds.load(task.tfds_name, split=split, **kwargs)
    except BaseException as e:
        if not existed:  # Leave no partial download behind.
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(e, Exception):
            raise RuntimeError(_offline_message(
                task, split, f"{type(e).__name__}: {e}")) from e
        raise
    # TFDS datasets know their size; else one counting pass in `tf.data`.
    num_examples = int(dataset.cardinality())
    if num_examples < 0:
        num_examples = int(dataset.reduce(0, lambda count, _: count + 1))
    features = dict(zip(("texts_a", "texts_b"), task.text_features))
    label_dtype = tf.float32 if task.is_regression else tf.int32

    def element(example):
        texts = {key: example[feature] for key, feature in features.items()}
        return texts, tf.cast(example["label"], label_dtype)

    return TextDataset(dataset.map(element), num_examples, task.label_names)


def glue_dataset(task, split, glue_dir=None):
    """One split of a GLUE task as a `TextDataset`: strings and labels in `tf.data`.

    Without `glue_dir`, TFDS's own dataset of `glue/<task>`, mapped to the
    `TextDataset` layout (no pass over it). With `glue_dir`, the official
    TSV file: one streaming pass checks every row (the file and line of a bad
    one, as `load_glue` reports it), then `tf.data.TextLineDataset` reads
    it and the labels are mapped in the pipeline. Labels and arguments are
    those of `load_glue`.

    Example:
    ```python
    train = glue_dataset("sst2", "train", glue_dir="glue_data")
    train.num_examples, train.label_names  # (67349, ('negative', 'positive'))
    ```
    """
    task = get_glue_task(task)
    split = _check_split(task, split)
    if glue_dir is None:
        return _load_tfds(task, split)
    if not os.path.isdir(os.fspath(glue_dir)):
        raise FileNotFoundError(
            f"`glue_dir` is not a folder: {os.fspath(glue_dir)}. {_layout(task, glue_dir)}"
        )
    return _tsv_dataset(task, split, glue_dir)


def load_glue(task, split, glue_dir=None):
    """Loads one split of a GLUE task as plain Python lists (`glue_dataset`'s examples).

    With `glue_dir`, reads the official GLUE TSV files:
    `<glue_dir>/<display name>/train.tsv` and `dev.tsv` (MNLI:
    `dev_matched.tsv`, `dev_mismatched.tsv`), e.g. `glue_dir/SST-2/dev.tsv`.
    Without, loads `glue/<task>` with TensorFlow Datasets (needs network
    access the first time). String labels map to ids in TFDS order (e.g. RTE:
    entailment=0, not_entailment=1; MNLI: entailment=0, neutral=1,
    contradiction=2); STS-B labels are float scores in [0, 5].

    Args:
        task: task name in any common spelling (`"SST-2"`, `"sst2"`, ...) or
            a `GlueTask`.
        split: `"train"` or `"validation"` (`"dev"` also works); MNLI has
            `"validation_matched"` and `"validation_mismatched"`.
        glue_dir: optional folder in the official GLUE layout.

    Returns:
        `TextExamples`; it unpacks as `(texts_a, texts_b or None, labels)`.

    Example:
    ```python
    texts_a, texts_b, labels = load_glue("RTE", "validation", glue_dir="glue_data")
    ```
    """
    task = get_glue_task(task)
    if glue_dir is not None and os.path.isdir(os.fspath(glue_dir)):
        # The check's own pass reads the examples (scores exactly as written).
        return _tsv_dataset(task, _check_split(task, split), glue_dir, collect=True)
    return glue_dataset(task, split, glue_dir).to_examples()
