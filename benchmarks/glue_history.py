"""Per-epoch logs of one run, read back from its TensorBoard event files.

The command line tool's training functions return the best epoch's metrics,
not the per-epoch logs; its Keras `TensorBoard` callback writes them
(`epoch_<log name>` under `train/`, the `val_*` logs of `ValidationMetrics`
under `validation/`), so the benchmark gives every run its own log folder
and reads the scalars back from there.
"""

import glob
import os


def _scalars(folder):
    """`{tag: {step: value}}` of the scalar summaries of the event files in `folder`."""
    import tensorflow as tf

    values = {}
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor"):
                    array = tf.make_ndarray(value.tensor)
                    if array.ndim != 0 or array.dtype.kind not in "fiu":
                        continue
                    number = float(array)
                else:
                    continue
                values.setdefault(value.tag, {})[int(event.step)] = number
    return values


def read(log_dir):
    """`{"train": {name: [per epoch]}, "validation": {metric: [per epoch]}}` of a run.

    Names drop the callback's `epoch_` prefix; a run without event files
    (TensorBoard off) gives empty dicts.
    """
    history = {}
    for split in ("train", "validation"):
        scalars = _scalars(os.path.join(log_dir, split))
        history[split] = {
            tag[len("epoch_"):]: [by_step[s] for s in sorted(by_step)]
            for tag, by_step in sorted(scalars.items())
            if tag.startswith("epoch_")
        }
    return history
