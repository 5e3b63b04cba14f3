"""Writing outputs safely, and exporting students for serving.

A run writes its files into a staging folder inside the output folder and
moves them into place only when it has succeeded (`StagedOutputs`); a
failed or interrupted run leaves earlier results untouched. Single files
are replaced with `os.replace` (atomic on one file system); a folder (the
SavedModel) is swapped in by two renames.

Example:
```python
with StagedOutputs("augpro_runs/demo") as out:
    save_keras(student, out.path("student.keras"))
    export_saved_model(student, out.path("student_saved_model"), sequence_length=32)
    write_json({"accuracy": 0.9}, out.path("results.json"))
# All three files are now in augpro_runs/demo.
```
"""

import json
import os
import shutil
import tempfile
import time

import tensorflow as tf


class StagedOutputs:
    """Stages a run's outputs and moves them into `output_dir` on success.

    Use it as a context manager: on a normal exit `commit()` moves every
    staged entry into `output_dir` (replacing older ones), on an exception
    `discard()` deletes the staging folder and nothing else changes.

    Args:
        output_dir: the final folder (created when missing).
    """

    def __init__(self, output_dir):
        self.output_dir = os.fspath(output_dir)
        os.makedirs(self.output_dir, exist_ok=True)
        self.staging = tempfile.mkdtemp(prefix=".staging-", dir=self.output_dir)
        self.committed = []

    def path(self, name):
        """Where to write the output `name` (a file or folder) for now."""
        return os.path.join(self.staging, name)

    def commit(self):
        """Moves every staged entry into `output_dir`; returns their final paths."""
        for name in sorted(os.listdir(self.staging)):
            target = os.path.join(self.output_dir, name)
            replace(os.path.join(self.staging, name), target)
            self.committed.append(target)
        shutil.rmtree(self.staging, ignore_errors=True)
        return self.committed

    def discard(self):
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False


def replace(source, target):
    """Moves `source` to `target`, replacing a file or folder already there."""
    if os.path.isdir(source) and os.path.exists(target):
        old = f"{target}.old-{os.getpid()}-{time.time_ns()}"
        os.replace(target, old)
        os.replace(source, target)
        if os.path.isdir(old):
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.remove(old)
    else:
        os.replace(source, target)


def write_json(data, path):
    """Writes JSON to `path` through a temporary file and a rename."""
    write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", path)


def write_text(text, path):
    """Writes text to `path` through a temporary file and a rename.

    A reader sees the old file or the new one, never a partial one.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def save_keras(model, path):
    """Saves a model as a `.keras` file (reload: `import augpro_keras` then
    `keras.models.load_model(path)`)."""
    model.save(path)


def serving_signature(sequence_length, with_segments=True):
    """The input signature of the `serve` endpoint: int32/bool `[batch, sequence_length]`."""
    spec = {
        "token_ids": tf.TensorSpec([None, sequence_length], tf.int32, name="token_ids"),
        "padding_mask": tf.TensorSpec([None, sequence_length], tf.bool, name="padding_mask"),
    }
    if with_segments:
        spec["segment_ids"] = tf.TensorSpec([None, sequence_length], tf.int32, name="segment_ids")
    return [spec]


def export_saved_model(model, path, sequence_length, with_segments=True):
    """Exports a classifier as a TensorFlow SavedModel with a `serve` endpoint.

    The endpoint takes a dict of `token_ids` (int32), `padding_mask` (bool)
    and `segment_ids` (int32), each `[batch, sequence_length]`, and returns
    the logits. Reload with `tf.saved_model.load(path).serve(inputs)`;
    TensorFlow Serving uses the `serving_default` signature.

    Args:
        model: a Keras classifier taking the input dict.
        path: the SavedModel folder to write.
        sequence_length: length of the inputs.
        with_segments: whether the endpoint takes `segment_ids`.
    """
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve",
        fn=lambda inputs: model(inputs, training=False),
        input_signature=serving_signature(sequence_length, with_segments),
    )
    archive.write_out(path, verbose=False)
