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
        role: "teacher" or "student".
        details: anything else worth keeping (epochs, augmentations, time).
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
        """The student row with the highest first metric (`None` without students)."""
        students = [r for r in self.rows if r.role == "student"]
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
            name = row.name + (" *" if row is best else "")
            body.append([name] + [_percent(row.metrics.get(m)) for m in self.metrics])
        widths = [max(len(str(line[i])) for line in [header] + body) for i in range(len(header))]

        def line(cells):
            return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

        size = f" ({self.num_examples} examples)" if self.num_examples else ""
        lines = [f"{self.task}, {self.split}{size}", line(header),
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [line(cells) for cells in body]
        if best is not None and mark_best:
            lines.append(f"* best student by {self.metrics[0]}")
        return "\n".join(lines)

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
