"""`TextExamples`: parallel lists of texts and labels, as the loaders return them."""

import dataclasses

@dataclasses.dataclass(frozen=True)
class TextExamples:
    """A text classification (or regression) data set held in plain lists.

    Iterating gives `(texts_a, texts_b, labels)`, so it unpacks like a tuple:
    `texts_a, texts_b, labels = load_glue("rte", "train", glue_dir)`, and
    `make_dataset(*examples, tokenizer=..., ...)` works.

    Args:
        texts_a: list of str, the first (or only) text of every example.
        texts_b: `None` for single-text tasks, else a list of str of the same
            length: the second text of every pair.
        labels: `None` for unlabeled data, else a list of int class ids or of
            float scores (regression), one per example.
        label_names: `None` or the class names; `label_names[i]` is the name
            of class id `i`.

    Example:
    ```python
    examples = TextExamples(["a b", "c"], labels=[0, 1], label_names=("no", "yes"))
    texts_a, texts_b, labels = examples
    examples.num_examples  # 2
    ```
    """

    texts_a: list
    texts_b: list | None = None
    labels: list | None = None
    label_names: tuple | None = None

    def __post_init__(self):
        n = len(self.texts_a)
        for name in ("texts_b", "labels"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(
                    f"`{name}` must have one entry per text in `texts_a` ({n}). "
                    f"Received {len(value)} entries."
                )
        if self.label_names is not None:
            object.__setattr__(self, "label_names", tuple(self.label_names))

    def __iter__(self):
        yield self.texts_a
        yield self.texts_b
        yield self.labels

    @property
    def num_examples(self):
        """Number of examples."""
        return len(self.texts_a)

    @property
    def is_pair(self):
        """Whether every example is a pair of texts."""
        return self.texts_b is not None

    def select(self, indices):
        """Returns the examples at `indices` (a sequence of ints), in that order."""
        indices = [int(i) for i in indices]

        def pick(values):
            return None if values is None else [values[i] for i in indices]

        return TextExamples(
            texts_a=pick(self.texts_a),
            texts_b=pick(self.texts_b),
            labels=pick(self.labels),
            label_names=self.label_names,
        )
