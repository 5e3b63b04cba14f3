"""Sample augmented sentences: original, augmented and the teacher's label of each.

AugPro's augmentations make new token ids; these helpers turn them back into
text for people to read (the `augment` command, the end of `run`, and the
TensorBoard text summaries).

Example:
```python
rows = augmented_samples(distiller, tokenizer, x, y, label_names=("negative", "positive"))
print(format_samples(rows))
```
"""

import csv
import dataclasses
import io

import numpy as np

from augpro_keras.data.tokenizers import detokenize
from augpro_keras.data.tokenizers import special_tokens


@dataclasses.dataclass
class SampleRow:
    """One augmented sentence.

    Attributes:
        augmentation: the augmentation's name (e.g. "augpro_mix").
        original: the original text (the texts of a pair joined by " [SEP] ").
        augmented: the augmented text.
        original_label: the teacher's prediction on the original.
        augmented_label: the teacher's prediction on the augmented text.
        changed_tokens: fraction of real tokens the augmentation replaced.
    """

    augmentation: str
    original: str
    augmented: str
    original_label: str
    augmented_label: str
    changed_tokens: float


def readable(tokenizer, token_ids):
    """Text of one packed row (`tokenizer`: keras-hub preprocessor or tokenizer):
    padding, [CLS] and the last [SEP] dropped.

    A separator inside the row (between the texts of a pair, or where
    AugPro-Mix kept a longer partner's tail) shows as ` [SEP] `.
    """
    specials = special_tokens(tokenizer)
    ids = [int(i) for i in np.asarray(token_ids).reshape(-1) if int(i) != specials.pad]
    parts, current = [], []
    for i in ids:
        if i == specials.end:
            parts.append(current)
            current = []
        else:
            current.append(i)
    if current:
        parts.append(current)
    texts = [detokenize(tokenizer, part, skip_special_tokens=True) if part else ""
             for part in parts]
    return " [SEP] ".join(t for t in texts if t) or "(empty)"


def label_text(logits, label_names=None, is_regression=False):
    """`"positive (0.93)"` for class logits, `"3.41"` for a regression score."""
    logits = np.asarray(logits, dtype="float64").reshape(-1)
    if is_regression:
        return f"{logits[0]:.2f}"
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    index = int(probabilities.argmax())
    name = label_names[index] if label_names else str(index)
    return f"{name} ({probabilities[index]:.2f})"


def _teacher_logits(teacher, token_ids, padding_mask, segment_ids):
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    if segment_ids is not None:
        inputs["segment_ids"] = segment_ids
    return np.asarray(teacher(inputs, training=False))


def augmented_samples(distiller, tokenizer, x, y=None, label_names=None, is_regression=False,
                      step=0):
    """Augments a batch with the distiller's token-producing augmentations.

    Args:
        distiller: an `augpro_keras.Distiller`.
        tokenizer: the models' keras-hub preprocessor or tokenizer.
        x: dict of numpy inputs (`token_ids`, `padding_mask`, `segment_ids`).
        y: optional labels (FGSM's gradient then includes the label loss).
        label_names: class names for the labels shown.
        is_regression: whether the teacher outputs a score.
        step: the step number that seeds the random draws.

    Returns:
        A list of `SampleRow`, augmentation by augmentation.
    """
    outputs = distiller.augment(x, y, step=step)
    token_ids = np.asarray(x["token_ids"])
    segment_ids = x.get("segment_ids")
    original_logits = _teacher_logits(distiller.teacher, token_ids, x["padding_mask"], segment_ids)
    rows = []
    for name, output in outputs.items():
        if output.token_ids is None:
            continue
        new_ids = np.asarray(output.token_ids)
        new_mask = np.asarray(output.padding_mask)
        new_logits = _teacher_logits(distiller.teacher, new_ids, new_mask, segment_ids)
        for i in range(len(token_ids)):
            real = new_mask[i]
            changed = float((new_ids[i] != token_ids[i])[real].mean()) if real.any() else 0.0
            rows.append(SampleRow(
                augmentation=name,
                original=readable(tokenizer, token_ids[i]),
                augmented=readable(tokenizer, new_ids[i]),
                original_label=label_text(original_logits[i], label_names, is_regression),
                augmented_label=label_text(new_logits[i], label_names, is_regression),
                changed_tokens=changed,
            ))
    return rows


def format_samples(rows, width=100):
    """The rows for a terminal: original, then augmented, each with the teacher's label."""
    lines, current = [], None
    for row in rows:
        if row.augmentation != current:
            current = row.augmentation
            lines.append(f"[{current}]  (teacher's label in brackets)")
        lines.append(f"  original : {_clip(row.original, width)}  [{row.original_label}]")
        lines.append(
            f"  augmented: {_clip(row.augmented, width)}  [{row.augmented_label}]"
            f"  ({row.changed_tokens:.0%} of tokens changed)"
        )
    return "\n".join(lines)


def samples_markdown(rows):
    """A Markdown table per augmentation, for `tf.summary.text`: `{name: text}`."""
    tables = {}
    for row in rows:
        if row.augmentation not in tables:
            tables[row.augmentation] = [
                "| original | teacher | augmented | teacher | changed |",
                "|---|---|---|---|---|",
            ]
        tables[row.augmentation].append(
            f"| {_cell(row.original)} | {_cell(row.original_label)} | {_cell(row.augmented)} "
            f"| {_cell(row.augmented_label)} | {row.changed_tokens:.0%} |"
        )
    return {name: "\n".join(lines) for name, lines in tables.items()}


def samples_tsv(rows):
    """The rows as TSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["augmentation", "original", "augmented", "original_teacher_label",
                     "augmented_teacher_label", "changed_tokens"])
    for row in rows:
        writer.writerow([row.augmentation, row.original, row.augmented, row.original_label,
                         row.augmented_label, f"{row.changed_tokens:.3f}"])
    return buffer.getvalue()


def _clip(text, width):
    return text if len(text) <= width else text[: width - 3] + "..."


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")
