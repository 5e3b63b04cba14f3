"""The results table: one row per model, one column per metric of the task.

Example:
```python
table = ResultsTable("demo", ("accuracy", "f1"), split="validation", num_examples=240)
table.add("Teacher", {"accuracy": 0.95, "f1": 0.95}, role="teacher")
table.add("KD", {"accuracy": 0.90, "f1": 0.89}, role="student")
print(table.format())
```
prints
```
demo, validation (240 examples)
| Model   | accuracy | f1    |
|---------|----------|-------|
| Teacher | 95.00    | 95.00 |
| KD      | 90.00    | 89.00 |
```
"""

import dataclasses
import math


@dataclasses.dataclass
class Row:
    """One model's results.

    Attributes:
        name: row label ("Teacher", "FT student", "KD+AugPro-Mix", ...).
        metrics: `{metric: value}` (fractions, not percentages).
        role: "teacher", "student" (a distilled student, a candidate for
            the best student) or "reference" (the FT student: fine-tuned on
            the labels alone, shown for comparison, never the best student).
        details: anything else worth keeping (epochs, augmentations, time);
            `file`: the output file that holds this model, if any; `kept`:
            the row comes from an earlier `results.json` (`--overwrite`).
    """

    name: str
    metrics: dict
    role: str = "student"
    details: dict = dataclasses.field(default_factory=dict)


class ResultsTable:
    """Collects rows and prints them as a Markdown table (values in percent).

    Args:
        task: the task's name, in the title.
        metrics: the metric names (columns); the first picks the best student.
        split: the evaluated split, in the title.
        num_examples: number of evaluated examples, in the title.
    """

    def __init__(self, task, metrics, split="validation", num_examples=None):
        self.task, self.metrics = task, tuple(metrics)
        self.split, self.num_examples = split, num_examples
        self.rows = []

    def add(self, name, metrics, role="student", **details):
        row = Row(name, dict(metrics), role, details)
        self.rows.append(row)
        return row

    def best_student(self):
        """The distilled student row with the highest first metric (`None` without one).

        Rows kept from an earlier run count only when their model is still
        saved (their `file`); rows whose first metric is NaN come last.
        """
        students = [r for r in self.rows if r.role == "student"
                    and (not r.details.get("kept") or r.details.get("file"))]
        key = self.metrics[0]

        def score(row):
            value = row.metrics.get(key, float("nan"))
            return -math.inf if value is None or math.isnan(value) else value

        return max(students, key=score) if students else None

    def format(self, mark_best=True):
        """The table as Markdown text, the best student marked with `*`."""
        best = self.best_student() if mark_best else None
        header = ["Model"] + list(self.metrics)
        body = []
        for row in self.rows:
            name = row.name + (" *" if row is best else "") + (
                " (earlier)" if row.details.get("kept") else "")
            body.append([name] + [_percent(row.metrics.get(m)) for m in self.metrics])
        widths = [max(len(str(line[i])) for line in [header] + body) for i in range(len(header))]

        def line(cells):
            return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

        size = f" ({self.num_examples} examples)" if self.num_examples else ""
        lines = [f"{self.task}, {self.split}{size}", line(header),
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [line(cells) for cells in body]
        if best is not None and mark_best:
            lines.append(f"* best student by {self.metrics[0]}" + (
                f" among the distilled students: {best.details['file']}"
                + (f" and {best.details['saved_model']}/" if best.details.get("saved_model")
                   else "")
                if best.details.get("file") else ""))
        lines += self._legend()
        return "\n".join(lines)

    def _legend(self):
        lines = []
        for row in self.rows:
            if row.role == "teacher" and row.details.get("file"):
                lines.append(f"{row.name}: {row.details['file']}")
            elif row.role == "reference":
                lines.append(f"{row.name}: fine-tuned on the labels alone, a reference row "
                             "(never the best student; not saved)")
        if any(row.details.get("kept") for row in self.rows):
            lines.append("(earlier): kept from the results.json this command replaced "
                         "(--overwrite); not run again")
        return lines

    def to_dict(self):
        best = self.best_student()
        return {
            "task": self.task,
            "split": self.split,
            "num_examples": self.num_examples,
            "metrics": list(self.metrics),
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "best_student": None if best is None else best.name,
        }


def _percent(value):
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{100 * value:.2f}"
