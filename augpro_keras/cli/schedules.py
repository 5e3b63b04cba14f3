"""The learning rate of a training run: constant, linear or cosine, with a warmup.

`learning_rate(section, steps_per_epoch)` reads a config section
(`finetune` or `distill`: `learning_rate`, `learning_rate_schedule`,
`warmup_steps`, `epochs`) and returns what the optimizer takes: the plain
float for a constant rate without warmup (the tool's behaviour before
schedules), otherwise a `keras.optimizers.schedules.LearningRateSchedule`.
Every schedule is a function of the optimizer's step (`optimizer.iterations`),
which a backup restores, so a run resumed mid-epoch continues on the same
curve; Keras's TensorBoard callback logs its value every epoch
(`epoch_learning_rate`).

Example:
```python
rate = learning_rate({"learning_rate": 1e-3, "learning_rate_schedule": "cosine",
                      "warmup_steps": 10, "epochs": 2}, steps_per_epoch=50)
float(rate(10))   # 1e-3: the end of the warmup
float(rate(100))  # 0.0: the run's last step
```
"""

import keras

SCHEDULES = ("constant", "linear", "cosine")


def learning_rate(section, steps_per_epoch):
    """The optimizer's learning rate for a run of `section["epochs"] * steps_per_epoch` steps.

    Args:
        section: a validated `finetune` or `distill` config section.
        steps_per_epoch: optimizer steps of one epoch.

    Returns:
        A float (constant, no warmup) or a `LearningRateSchedule`.

    Raises:
        ValueError: when the warmup is not shorter than the run.
    """
    rate = section["learning_rate"]
    kind, warmup = section["learning_rate_schedule"], section["warmup_steps"]
    if kind not in SCHEDULES:
        raise ValueError(f"learning_rate_schedule must be one of {', '.join(SCHEDULES)}, got "
                         f"{kind!r}")
    if kind == "constant" and warmup == 0:
        return rate
    total = section["epochs"] * steps_per_epoch
    if warmup >= total:
        raise ValueError(f"warmup_steps: expected fewer steps than the run's {total} (epochs x "
                         f"steps per epoch), got {warmup}")
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0, decay_steps=total - warmup, alpha=0.0,
            warmup_target=rate, warmup_steps=warmup)
    return LinearWarmupDecay(rate, warmup, total - warmup if kind == "linear" else None)


@keras.saving.register_keras_serializable(package="augpro_keras")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `learning_rate`, then constant or a linear decay to 0.

    Our own class because no Keras schedule has this shape:
    `PolynomialDecay(power=1)` decays linearly but has no warmup, and
    `CosineDecay`'s warmup is followed by a cosine.

    Args:
        learning_rate: the peak rate, reached after `warmup_steps` steps.
        warmup_steps: steps of the warmup (`0`: none).
        decay_steps: steps of the linear decay to 0 after the warmup; `None`
            keeps `learning_rate` after the warmup.

    Example:
    ```python
    schedule = LinearWarmupDecay(1e-3, warmup_steps=10, decay_steps=90)
    [float(schedule(step)) for step in (0, 5, 10, 55, 100)]  # 0, 5e-4, 1e-3, 5e-4, 0
    ```
    """

    def __init__(self, learning_rate, warmup_steps=0, decay_steps=None):
        if warmup_steps < 0 or (decay_steps is not None and decay_steps < 1):
            raise ValueError(f"warmup_steps must be >= 0 and decay_steps None or >= 1, got "
                             f"warmup_steps={warmup_steps}, decay_steps={decay_steps}")
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = None if decay_steps is None else int(decay_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rate = keras.ops.convert_to_tensor(self.learning_rate, "float32")
        if self.decay_steps is None:
            after = rate
        else:
            done = (step - self.warmup_steps) / self.decay_steps
            after = rate * keras.ops.clip(1.0 - done, 0.0, 1.0)
        if self.warmup_steps == 0:
            return after
        warm = rate * step / self.warmup_steps
        return keras.ops.where(step < self.warmup_steps, warm, after)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps,
                "decay_steps": self.decay_steps}
