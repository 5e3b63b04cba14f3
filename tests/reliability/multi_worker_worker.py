"""One worker of the two-process `MultiWorkerMirroredStrategy` test.

    TF_CONFIG=... python -m tests.reliability.multi_worker_worker OUT_DIR

Every worker builds the full dataset; see `dataset()` for how it is split.
The chief alone writes the backup.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from augpro_keras import Distiller  # noqa: E402
from augpro_keras.callbacks import DistillationBackup  # noqa: E402
from augpro_keras.callbacks import NonFiniteLossGuard  # noqa: E402
from tests import tiny  # noqa: E402

GLOBAL_BATCH = 8
NUM_BATCHES = 3
AUGMENTATIONS = ("augpro_mix", "augpro_fgsm")
MIX_GROUP_SIZE = 2


def build():
    """Call inside the strategy's scope."""
    teacher, student = tiny.smallest_pair()
    distiller = Distiller(
        teacher, student, augmentations=list(AUGMENTATIONS), seed=3,
        teacher_dropout=False, mix_group_size=MIX_GROUP_SIZE,
    )
    # Plain SGD: a wrong gradient scale shows at once.
    distiller.compile(optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"], jit_compile=False)
    return distiller


def dataset():
    """The global batches, repeated, with sharding by data.

    Each worker reads the whole dataset; `experimental_distribute_dataset`
    (which `fit` applies) splits every global batch into per-replica halves
    and `AutoShardPolicy.DATA` gives worker `i` the `i`-th half, as one
    process with two replicas would split it. The dataset is infinite
    (train with `steps_per_epoch`): for finite datasets a multi-worker
    strategy hides the batch size (it allows a last partial batch), and the
    Distiller needs static shapes.
    """
    data = tiny.dataset(batch_size=GLOBAL_BATCH, num_batches=NUM_BATCHES, length=8).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


def main(out_dir):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    with strategy.scope():
        distiller = build()
    callbacks = [NonFiniteLossGuard(), DistillationBackup(os.path.join(out_dir, "backup"), save_every_steps=1)]
    history = distiller.fit(dataset(), epochs=1, steps_per_epoch=NUM_BATCHES, verbose=0, callbacks=callbacks)
    np.savez(
        os.path.join(out_dir, f"worker{task}.npz"),
        *distiller.student.get_weights(),
        loss=np.asarray(history.history["loss"]),
    )
    print("worker", task, "done", int(distiller.optimizer.iterations.numpy()))


if __name__ == "__main__":
    main(sys.argv[1])
