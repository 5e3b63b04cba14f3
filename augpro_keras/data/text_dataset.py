"""`TextDataset`: one split of a text classification data set as a `tf.data` pipeline.

The loaders (`glue_dataset`, `text_classification_dataset`, `demo_dataset`)
return the strings and labels of a split as a `tf.data.Dataset` read from
its source (TFDS, or the file line by line); what needs a pass over the
data (counts, label checks) was done by the loader while streaming the
source, keeping only labels. Subsets are `tf.data` filters over the
examples' positions, so nothing holds the texts of a whole split in Python.
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from augpro_keras.data import splits
from augpro_keras.data.examples import TextExamples


@dataclasses.dataclass(frozen=True)
class TextDataset:
    """The examples of one split: strings (and labels) in a `tf.data` pipeline.

    Args:
        dataset: an unbatched `tf.data.Dataset` whose elements are
            `(texts, label)`, or `texts` for a source without labels;
            `texts` is a dict with the string scalar `"texts_a"` (and
            `"texts_b"` for text pairs), `label` an int32 class id or a
            float32 score.
        num_examples: int, the number of elements of `dataset`.
        label_names: `None` or the class names (`label_names[i]` names id
            `i`).
        has_labels: whether batches carry the labels; `False` is the
            unlabeled distillation setting (the paper's Table 2), whose
            `dataset` still holds them (to measure a model on it).

    Example:
    ```python
    train = glue_dataset("sst2", "train")
    small = train.take_fraction(0.1, seed=0)
    batches = batch_text_dataset(small, tokenizer, 128, 32, shuffle=True, seed=0)
    ```
    """

    dataset: tf.data.Dataset
    num_examples: int
    label_names: tuple | None = None
    has_labels: bool = True

    def __post_init__(self):
        if self.label_names is not None:
            object.__setattr__(self, "label_names", tuple(self.label_names))
        if not self._source_has_labels:
            object.__setattr__(self, "has_labels", False)

    @classmethod
    def from_examples(cls, examples):
        """A `TextDataset` of `TextExamples` (parallel lists)."""
        texts = {"texts_a": list(examples.texts_a)}
        if examples.texts_b is not None:
            texts["texts_b"] = list(examples.texts_b)
        if examples.labels is None:
            dataset = tf.data.Dataset.from_tensor_slices(texts)
        else:
            labels = np.asarray(examples.labels)
            labels = labels.astype(np.float32 if labels.dtype.kind == "f" else np.int32)
            dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
        return cls(dataset, examples.num_examples, examples.label_names)

    # === What the split is ===
    @property
    def _source_has_labels(self):
        return isinstance(self.dataset.element_spec, tuple)

    @property
    def is_pair(self):
        """Whether every example is a pair of texts."""
        spec = self.dataset.element_spec
        return "texts_b" in (spec[0] if isinstance(spec, tuple) else spec)

    @property
    def is_regression(self):
        """Whether the labels are float scores."""
        return self._source_has_labels and self.dataset.element_spec[1].dtype.is_floating

    # === Subsets ===
    def subset(self, indices):
        """The examples at the sorted positions `indices`, in their order, as a `TextDataset`."""
        indices = np.asarray(indices, dtype=np.int64)
        if np.array_equal(indices, np.arange(len(indices))):  # A head: read only that.
            return dataclasses.replace(self, dataset=self.dataset.take(len(indices)),
                                       num_examples=len(indices))
        mask = np.zeros(self.num_examples, dtype=bool)
        mask[indices] = True
        keep = tf.constant(mask)

        def kept(positions, element):  # Vectorized over batches of positions.
            where = tf.gather(keep, positions)
            return tf.nest.map_structure(lambda t: tf.boolean_mask(t, where), element)

        dataset = self.dataset.enumerate().batch(1024).map(kept).unbatch()
        return dataclasses.replace(self, dataset=dataset, num_examples=int(mask.sum()))

    def take_fraction(self, fraction, seed=0):
        """`splits.take_fraction` of the examples: the same examples as for lists."""
        return self.subset(splits.take_fraction(np.arange(self.num_examples), fraction, seed))

    def labeled_unlabeled_split(self, labeled_fraction, seed=0):
        """`(labeled, unlabeled)` as `splits.labeled_unlabeled_split` makes them for lists."""
        labeled, unlabeled = splits.labeled_unlabeled_split(
            np.arange(self.num_examples), labeled_fraction, seed)
        return self.subset(labeled), self.subset(unlabeled)

    def without_labels(self):
        """The same examples for the unlabeled setting (batches without labels)."""
        return dataclasses.replace(self, has_labels=False)

    def with_float_labels(self):
        """Class ids read as float scores (a validation file of a regression task)."""
        dataset = self.dataset.map(lambda x, y: (x, tf.cast(y, tf.float32)))
        return dataclasses.replace(self, dataset=dataset)

    # === Reading (small samples, checks) ===
    def elements(self):
        """`dataset` with the labels dropped when `has_labels` is false."""
        if self._source_has_labels and not self.has_labels:
            return self.dataset.map(lambda x, y: x)
        return self.dataset

    @functools.cached_property
    def _label_values(self):
        column = self.dataset.batch(4096).map(lambda x, y: y)
        parts = list(column.as_numpy_iterator())
        return np.concatenate(parts) if parts else np.zeros([0])

    def label_values(self):
        """The labels of every example (numpy), read once from the pipeline's label column."""
        return self._label_values

    @functools.cached_property
    def _distinct_labels(self):
        batches = self.dataset.batch(4096).map(lambda x, y: tf.unique(tf.cast(y, tf.int64))[0])
        distinct = batches.unbatch().unique()
        return sorted(int(v) for v in distinct.as_numpy_iterator())

    def distinct_labels(self):
        """The sorted distinct class ids, by `tf.data`'s `unique` over the label column (once)."""
        return list(self._distinct_labels)

    @property
    def labels(self):
        """`None` without labels, else `label_values()` (reads the label column)."""
        return self.label_values() if self.has_labels else None

    def select(self, indices):
        """The examples at the sorted positions `indices` as `TextExamples` (small samples)."""
        return self.subset(indices).to_examples()

    def to_examples(self):
        """Every example in Python lists (`TextExamples`): for small splits only."""
        texts_a, texts_b, labels = [], [], []
        for element in self.dataset.as_numpy_iterator():
            texts, label = element if self._source_has_labels else (element, None)
            texts_a.append(texts["texts_a"].decode("utf-8"))
            if "texts_b" in texts:
                texts_b.append(texts["texts_b"].decode("utf-8"))
            labels.append(None if label is None else label.item())
        return TextExamples(
            texts_a, texts_b if self.is_pair else None,
            labels if self.has_labels else None, self.label_names,
        )

    def texts(self):
        """A `tf.data.Dataset` of every string of the split (first texts, then second texts)."""
        texts = self.dataset.map(lambda x, *_: x)
        corpus = texts.map(lambda x: x["texts_a"])
        if self.is_pair:
            corpus = corpus.concatenate(texts.map(lambda x: x["texts_b"]))
        return corpus

    @property
    def texts_a(self):
        """The first texts as a list of str (reads the split)."""
        return [t.decode("utf-8") for t in self.texts().take(self.num_examples).as_numpy_iterator()]

    @property
    def texts_b(self):
        """The second texts as a list of str, or `None` (reads the split)."""
        if not self.is_pair:
            return None
        second = self.texts().skip(self.num_examples)
        return [t.decode("utf-8") for t in second.as_numpy_iterator()]
