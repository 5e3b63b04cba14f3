"""What every command sets up first: seed, dtype policy, strategy, data, tokenizer.

Example:
```python
with command_session(config, out=print) as session:
    session.info.strategy      # the tf.distribute strategy
    session.data.train         # TextExamples
    session.tokenizer          # a TextTokenizer
```
"""

import contextlib
import dataclasses
import os
import time

import keras

from augpro_keras.cli import inputs
from augpro_keras.cli.strategy import resolve_strategy


@dataclasses.dataclass
class Session:
    """The state shared by the steps of one command.

    Attributes:
        config: the validated config.
        info: the `StrategyInfo`.
        data: the `TaskData`.
        tokenizer: the `TextTokenizer`.
        out: function that prints a line for the user.
        log_root: TensorBoard folder of this command (`None` when disabled).
    """

    config: dict
    info: object
    data: object
    tokenizer: object
    out: object
    log_root: str | None

    @property
    def strategy(self):
        return self.info.strategy

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


@contextlib.contextmanager
def command_session(config, out=print, tokenizer=None, strategy_info=None):
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
    """
    runtime = config["runtime"]
    # The strategy first: MultiWorkerMirroredStrategy must exist before other
    # TensorFlow work; then the seed, before any dataset or tokenizer op.
    info = strategy_info or resolve_strategy(runtime["strategy"], runtime["tpu"])
    out(f"Strategy: {info.description}")
    keras.utils.set_random_seed(config["seed"])
    with _dtype_policy(runtime["mixed_precision"]):
        data = inputs.load_task_data(config)
        labeled = "unlabeled" if data.distill.labels is None else "labeled"
        out(
            f"Data: {data.name}: {data.train.num_examples} labeled training examples, "
            f"{data.distill.num_examples} {labeled} distillation examples, "
            f"{data.validation.num_examples} validation examples"
        )
        if tokenizer is None:
            tokenizer = inputs.build_tokenizer(config, _corpus(data))
        out(f"Tokenizer: {type(tokenizer).__name__}, {tokenizer.vocabulary_size} tokens")
        for key in ("batch_size", "eval_batch_size"):
            inputs.check_batch_size(config["data"][key], info.num_replicas, f"data.{key}")
        log_root = None
        if config["tensorboard"]["enabled"]:
            log_root = os.path.join(config["output_dir"], "logs", time.strftime("%Y%m%d-%H%M%S"))
        yield Session(config, info, data, tokenizer, out, log_root)


def _corpus(data):
    texts = list(data.train.texts_a) + list(data.train.texts_b or [])
    if data.distill is not data.train:
        texts += list(data.distill.texts_a) + list(data.distill.texts_b or [])
    return texts
