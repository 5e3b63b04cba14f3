"""Exporting a keras-hub text classifier as a SavedModel that takes raw strings.

keras-hub runs a task's preprocessor in the `tf.data` pipeline, outside the
model graph, so `task.export()` serves token ids. Here the preprocessor
(tokenizer and packer, TensorFlow Text ops) goes into the serving graph, so
a server, `tf.saved_model.load` or TensorFlow Serving takes text directly.
Loading needs `import tensorflow_text` (it registers the tokenizer ops),
not Keras, keras-hub or this package.

Example:
```python
export_text_classifier(student, "student_saved_model")

# Anywhere with TensorFlow and TensorFlow Text:
import tensorflow as tf, tensorflow_text  # noqa: F401
served = tf.saved_model.load("student_saved_model")
served.serve(tf.constant(["a great movie"]))["label"]     # [1]
served.serve_pairs(tf.constant(["a"]), tf.constant(["b"]))  # sentence pairs
```
"""

import tensorflow as tf


class _TextClassifierServing(tf.Module):
    """The task and its preprocessor behind string signatures."""

    def __init__(self, task):
        super().__init__(name="text_classifier_serving")
        self.task = task
        self.preprocessor = task.preprocessor

    def _outputs(self, x):
        logits = tf.cast(self.task(x, training=False), "float32")
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "label": tf.argmax(logits, axis=-1, output_type=tf.int32),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        return self._outputs(self.preprocessor(x=text))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text_a"),
            tf.TensorSpec([None], tf.string, name="text_b"),
        ]
    )
    def serve_pairs(self, text_a, text_b):
        # `x=`: a tuple passed alone would be read as `(x, y)`.
        return self._outputs(self.preprocessor(x=(text_a, text_b)))


def export_text_classifier(task, path):
    """Saves `task` with its preprocessor as a SavedModel that takes strings.

    Signatures: `serving_default` (= `serve`) takes `text` (string `[B]`);
    `serve_pairs` takes `text_a` and `text_b` for sentence-pair tasks. Both
    return `logits` (float32 `[B, C]`), `probabilities` (their softmax) and
    `label` (int32 `[B]`, the argmax).

    Args:
        task: a keras-hub `TextClassifier` with a preprocessor.
        path: the SavedModel folder to write.
    """
    if getattr(task, "preprocessor", None) is None:
        raise ValueError(
            f"{type(task).__name__} has no preprocessor, so a SavedModel of it cannot take "
            "raw strings. Attach the preprocessor that tokenized its training data."
        )
    module = _TextClassifierServing(task)
    tf.saved_model.save(
        module,
        path,
        signatures={"serving_default": module.serve, "serve_pairs": module.serve_pairs},
    )
    return path
