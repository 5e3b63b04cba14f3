"""A short distillation with a backup, run as a subprocess by `resume_test.py`.

    python -m tests.reliability.resume_worker BACKUP_DIR OUT.npz [MARKER STEP]

With MARKER and STEP it writes MARKER once the optimizer has made STEP
steps (after the backup of that step) and then waits to be killed.
Otherwise it trains to the end and saves the student's weights to OUT.npz.
"""

import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from augpro_keras.callbacks import DistillationBackup  # noqa: E402
from augpro_keras.callbacks import NonFiniteLossGuard  # noqa: E402
from tests.reliability import common  # noqa: E402

EPOCHS = 2
SAVE_EVERY = 2
BATCHES_PER_EPOCH = 4


class WaitToBeKilled(keras.callbacks.Callback):
    def __init__(self, marker, step):
        super().__init__()
        self.marker, self.step = marker, step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.step:
            with open(self.marker + ".tmp", "w") as f:
                f.write(str(batch))
            os.replace(self.marker + ".tmp", self.marker)
            while True:
                time.sleep(1)


def dataset():
    return common.dataset(num_examples=4 * BATCHES_PER_EPOCH)


def main(argv):
    backup_dir, out = argv[0], argv[1]
    callbacks = [NonFiniteLossGuard(), DistillationBackup(backup_dir, save_every_steps=SAVE_EVERY)]
    if len(argv) > 2:
        callbacks.append(WaitToBeKilled(argv[2], int(argv[3])))
    distiller = common.distiller(augmentations=("augpro_mix",))
    history = distiller.fit(dataset(), epochs=EPOCHS, callbacks=callbacks, verbose=0)
    np.savez(out, *distiller.student.get_weights(), loss=np.asarray(history.history["loss"]))
    print("done", int(distiller.optimizer.iterations.numpy()))


if __name__ == "__main__":
    main(sys.argv[1:])
