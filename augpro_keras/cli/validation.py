"""The validation set of a command, tokenized once and predicted on by every model.

A command evaluates every model after every epoch. A keras-hub task
preprocesses inside `predict`: each call maps its preprocessor over the
data again (a new `tf.data` function to trace) and builds a new iterator
over the tokenizer's graph, which takes seconds on a CPU whatever the
model's size. `ValidationSet` tokenizes the validation set once per
preprocessor, keeps the model inputs in memory (a few MB for a GLUE dev
set), and predicts on them with the task's preprocessor set aside, the way
keras-hub's `Task` documents for inputs preprocessed separately
(`task.preprocessor = None`). Models that take the dataset's batches as
they are (the package's own classifiers) get them in memory too, so the
dataset's tokenizer runs once. A validation set whose inputs would take more
than `max_bytes` is predicted on as it streams, as `predict` does.

Example:
```python
validation = ValidationSet(dataset, num_examples=872, labels=labels)
logits = validation.predict(student)  # [872, num_classes]
```
"""

import contextlib

import keras_hub
import numpy as np
import tensorflow as tf

from augpro_keras import text_inputs

#: The most memory (bytes) that the model inputs of a validation set may take
#: to be kept: GLUE's largest dev set (QQP, 40430 pairs) at length 128 takes
#: 47 MB as token ids, segment ids (int32) and padding mask (bool).
MAX_BYTES = 256 * 2**20


class ValidationSet:
    """Evaluation batches whose model inputs are computed once.

    Args:
        dataset: evaluation batches of a fixed size (inputs only, or
            `(inputs, labels)`), raw strings for keras-hub tasks.
        num_examples: real examples in `dataset` (the rest is batch padding).
        labels: the labels of the `num_examples` examples.
        max_bytes: the most memory the model inputs of one preprocessor may
            take; a larger set streams through `predict` at every call.
    """

    def __init__(self, dataset, num_examples, labels, max_bytes=MAX_BYTES):
        self.dataset = dataset
        self.num_examples = int(num_examples)
        self.labels = np.asarray(labels)[: self.num_examples]
        self.max_bytes = int(max_bytes)
        self._prepared = []  # [(preprocessor or None, in-memory dataset or None: too large)]

    def predict(self, model):
        """The predictions of `model` on the `num_examples` real examples."""
        prepared = self.inputs_of(model)
        if prepared is None:
            predictions = model.predict(self.dataset, verbose=0)
        else:
            with _preprocessor_set_aside(model):
                predictions = model.predict(prepared, verbose=0)
        return np.asarray(predictions)[: self.num_examples]

    def inputs_of(self, model):
        """The batches as `model` takes them, as a dataset of in-memory tensors;
        `None` when they would take more than `max_bytes`."""
        preprocessor = _preprocessor(model)
        for known, prepared in self._prepared:
            if known is preprocessor:
                return prepared
        dataset = self.dataset
        if preprocessor is not None:
            dataset = text_inputs.preprocess(dataset, preprocessor)
        batches, size = [], 0
        for batch in dataset:
            size += sum(part.shape.num_elements() * part.dtype.size
                        for part in tf.nest.flatten(batch))
            if size > self.max_bytes:
                batches = None
                break
            batches.append(batch)
        prepared = None
        if batches is not None:
            stacked = tf.nest.map_structure(lambda *parts: tf.stack(parts), *batches)
            prepared = tf.data.Dataset.from_tensor_slices(stacked)
        self._prepared.append((preprocessor, prepared))
        return prepared


def _preprocessor(model):
    """The preprocessor a keras-hub task applies in `predict`, else `None`."""
    if isinstance(model, keras_hub.models.Task):
        return model.preprocessor
    return None


@contextlib.contextmanager
def _preprocessor_set_aside(model):
    preprocessor = _preprocessor(model)
    if preprocessor is None:
        yield
        return
    model.preprocessor = None
    try:
        yield
    finally:
        model.preprocessor = preprocessor
