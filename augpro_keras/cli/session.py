"""What every command sets up first: seed, dtype policy, strategy, data, tokenizer.

Example:
```python
with command_session(config, out=print) as session:
    session.info.strategy      # the tf.distribute strategy
    session.data.train         # TextDataset (strings and labels in tf.data)
    session.tokenizer          # the run's keras-hub preprocessor (or tokenizer)
```
"""

import contextlib
import dataclasses
import json
import os
import shutil
import time

import keras
import numpy as np

from augpro_keras.cli import inputs
from augpro_keras.cli.strategy import resolve_strategy
from augpro_keras.cli.validation import ValidationSet
from augpro_keras.data import tokenizers


@dataclasses.dataclass
class Session:
    """The state shared by the steps of one command.

    Attributes:
        config: the validated config.
        info: the `StrategyInfo`.
        data: the `TaskData`.
        tokenizer: the run's keras-hub `TextClassifierPreprocessor`, or the bare
            keras-hub tokenizer of a `.keras` checkpoint's `tokenizer.json`.
        out: function that prints a line for the user.
        log_root: TensorBoard folder of this command (`None` when disabled).
        work: the `WorkFolder` of a training command (backups, resume).
        validation_sets: the `ValidationSet`s built so far, by the
            validation batch's layout; a session that `dataclasses.replace`
            makes of this one (another seed or log folder) shares them.
    """

    config: dict
    info: object
    data: object
    tokenizer: object
    out: object
    log_root: str | None
    work: object = None
    validation_sets: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def strategy(self):
        return self.info.strategy

    def validation_set(self):
        """The validation set (a `ValidationSet`), tokenized once for every model."""
        data = self.config["data"]
        key = (data["sequence_length"], data["eval_batch_size"])
        if key not in self.validation_sets:
            dataset, n = inputs.eval_dataset(self.data.validation, self.tokenizer, self.config)
            self.validation_sets[key] = ValidationSet(dataset, n, self.data.validation.labels)
        return self.validation_sets[key]

    def log_dir(self, name):
        """TensorBoard folder of one model, or `None` when TensorBoard is off."""
        if self.log_root is None:
            return None
        return os.path.join(self.log_root, slug(name))

    def metric_fn(self, predictions, labels):
        return inputs.compute_metrics(self.data, predictions, labels)

    @property
    def monitor(self):
        return self.data.metrics[0]


def slug(name):
    """A folder name for a row name: `KD+AugPro-Mix` -> `kd+augpro-mix`."""
    keep = "".join(c if c.isalnum() or c in "+-_." else "_" for c in name.lower())
    return keep.strip("_") or "model"


@contextlib.contextmanager
def _dtype_policy(name):
    previous = keras.mixed_precision.dtype_policy()
    if name is not None:
        keras.mixed_precision.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


WORK_DIR = ".augpro-work"


class WorkFolder:
    """What a command keeps while it runs, so that the same command resumes after a crash.

    `<output_dir>/.augpro-work/` holds `state.json` (the command and its
    config), the tokenizer, the students' initial weights and one folder
    per model: `backup/` (`DistillationBackup`), `best.npz` (the best
    epoch so far), `history.json` (`EpochLog`: the logs of its finished
    epochs), then, once trained, `model.keras` and `row.json`.
    A finished command removes the whole folder. Another command or other
    settings find the folder stale and start over.

    Args:
        output_dir: the command's output folder.
    """

    def __init__(self, output_dir):
        self.root = os.path.join(output_dir, WORK_DIR)

    def open(self, command, config, **extra):
        """Starts or resumes; returns the state of an interrupted run to resume, or `None`.

        A folder left by another command or other settings is removed
        (it holds no results: those are only ever in the output folder).
        """
        state = {"command": command, "config": _comparable(config), **extra}
        previous = self._read_json("state.json")
        if previous is not None and previous != state:
            self.remove()
            previous = None
        if previous is None:
            self.remove()
            os.makedirs(self.root, exist_ok=True)
            self._write_json("state.json", state)
        return previous

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def phase(self, name):
        """The folder of one model (created when needed)."""
        folder = self.path(slug(name))
        os.makedirs(folder, exist_ok=True)
        return folder

    def backup_folder(self, name):
        """The folder of one model's `DistillationBackup` backups."""
        return os.path.join(self.phase(name), "backup")

    def finished(self, name):
        """`(model_file, row)` of a model trained before an interruption, or `None`."""
        row = self._read_json(slug(name), "row.json")
        if row is None:
            return None
        return self.path(slug(name), "model.keras"), row

    def finish(self, name, model, row):
        """Keeps a trained model and its results row; drops its backups."""
        folder = self.phase(name)
        model.save(os.path.join(folder, "model.keras"))
        self._write_json(slug(name), "row.json", row)
        shutil.rmtree(self.backup_folder(name), ignore_errors=True)

    def save_arrays(self, name, arrays):
        temporary = self.path(f".{name}.tmp.npz")
        with open(temporary, "wb") as f:
            np.savez(f, *arrays)
        os.replace(temporary, self.path(name))

    def load_arrays(self, name):
        if not os.path.isfile(self.path(name)):
            return None
        with np.load(self.path(name)) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def _read_json(self, *parts):
        try:
            with open(self.path(*parts), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _write_json(self, *parts_and_data):
        *parts, data = parts_and_data
        path = self.path(*parts)
        temporary = path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, default=_jsonable)
        os.replace(temporary, path)


def _comparable(config):
    """The config as JSON data, without keys that do not change results."""
    data = json.loads(json.dumps(config, default=_jsonable))
    data["runtime"].pop("verbose", None)
    return data


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@contextlib.contextmanager
def command_session(config, out=print, tokenizer=None, strategy_info=None, data=None,
                    work=None):
    """Sets up a command; yields a `Session`.

    The strategy is resolved first, then the global seed is set, before
    any dataset or tokenizer op exists (re-seeding TensorFlow clears its
    eager caches, which hold SentencePiece resources).

    Args:
        config: the validated config.
        out: print function.
        tokenizer: a tokenizer to use (a saved teacher's); `None` builds the
            config's (a SentencePiece one is trained on every training text,
            labeled or not).
        strategy_info: a `StrategyInfo` already resolved (a notebook that
            connected to its TPU); `None` resolves `runtime.strategy`.
        data: the `TaskData`, when already loaded (and checked) before the
            command started; `None` loads it here.
        work: the `WorkFolder` of a training command, or `None`.
    """
    runtime = config["runtime"]
    # The strategy first: MultiWorkerMirroredStrategy must exist before other
    # TensorFlow work; then the seed, before any dataset or tokenizer op.
    info = strategy_info or resolve_strategy(runtime["strategy"], runtime["tpu"])
    out(f"Strategy: {info.description}")
    keras.utils.set_random_seed(config["seed"])
    with _dtype_policy(runtime["mixed_precision"]):
        if data is None:
            data = inputs.load_task_data(config)
        labeled = "labeled" if data.distill.has_labels else "unlabeled"
        out(
            f"Data: {data.name}: {data.train.num_examples} labeled training examples, "
            f"{data.distill.num_examples} {labeled} distillation examples, "
            f"{data.validation.num_examples} validation examples"
        )
        for warning in data.warnings:
            out(f"WARNING: {warning}")
        if tokenizer is None:
            tokenizer = inputs.build_tokenizer(config, _corpus(data))
        out(f"Tokenizer: {type(tokenizer).__name__}, {tokenizers.vocabulary_size(tokenizer)} "
            "tokens")
        for key in ("batch_size", "eval_batch_size"):
            inputs.check_batch_size(config["data"][key], info.num_replicas, f"data.{key}")
        log_root = None
        if config["tensorboard"]["enabled"]:
            log_root = os.path.join(config["output_dir"], "logs", time.strftime("%Y%m%d-%H%M%S"))
        yield Session(config, info, data, tokenizer, out, log_root, work)


def _corpus(data):
    """Every training (and distillation) string as a tf.data dataset, in the order of the lists."""
    texts = data.train.texts()
    if data.distill is not data.train:
        texts = texts.concatenate(data.distill.texts())
    return texts
