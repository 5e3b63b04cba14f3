"""The JSON report of `glue_distill.py`: finished entries, summaries and Markdown.

A report holds one entry per finished `(setting, row, seed)` under
`settings[setting]["entries"][row][str(seed)]`; everything else (the row
summaries, the paired comparisons) is recomputed from the entries by
`summarize_setting`, so a run completed in parts has the same report as one
run in one go. `save` writes the whole report through a temporary file and
`os.replace`, so the file on disk is always a complete report.
"""

import json
import os
import statistics

import paired_stats

FORMAT = 2

# (a, b): the paired comparisons `a - b` of the report, in this order.
COMPARISONS = (
    ("KD+AugPro-Mix", "KD+MixUp"),
    ("KD+AugPro-FGSM", "KD+FGSM"),
    ("KD+MixUp", "KD"),
    ("KD+AugPro-Mix", "KD"),
    ("KD+FGSM", "KD"),
    ("KD+AugPro-FGSM", "KD"),
    ("KD+AugPro-Mix+AugPro-FGSM", "KD"),
    ("KD+AugPro-Mix (end)", "KD+AugPro-Mix"),
    ("KD+KNN", "KD"),
    ("KD+AugPro-Mix", "KD+KNN"),
)

# Diagnostics shown in the Markdown tables: (log suffix, column title).
DIAGNOSTICS = (
    ("token_change_rate", "tokens changed"),
    ("teacher_confidence", "teacher conf."),
    ("teacher_label_flip_rate", "teacher label flips"),
)


def load(path):
    """The report at `path`, or `None` when there is none yet."""
    if not path or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    if report.get("format") != FORMAT:
        raise ValueError(
            f"{path} is a glue_distill report of format {report.get('format')!r}; this script "
            f"resumes format {FORMAT} only. Write to another --output."
        )
    return report


def save(report, path):
    """Writes `report` to `path` atomically (a temporary file, then `os.replace`)."""
    if not path:
        return
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    os.replace(temporary, path)


def entry(report, setting, row, seed):
    """The finished entry of `(setting, row, seed)`, or `None`."""
    return report["settings"].get(setting, {}).get("entries", {}).get(row, {}).get(str(seed))


def add_entry(report, setting, row, seed, value):
    entries = report["settings"][setting].setdefault("entries", {})
    entries.setdefault(row, {})[str(seed)] = value
    summarize(report)


def summarize(report):
    """Recomputes every setting's summaries and comparisons from its entries (so a
    report saved by this version has this version's comparisons everywhere)."""
    for setting in report["settings"].values():
        if "metrics" in setting:
            summarize_setting(setting)
    summarize_references(report)


def _seeds(row_entries):
    return sorted(row_entries, key=int)


BASE_LOGS = ("loss", "student_loss", "distillation_loss")


def diagnostic_means(history):
    """`{log name: mean over epochs}` of the augmentations' training logs in a history."""
    return {
        name: statistics.fmean(values)
        for name, values in history.get("train", {}).items()
        if values and name not in BASE_LOGS
        and (name.endswith("_loss") or any(name.endswith(suffix) for suffix, _ in DIAGNOSTICS))
    }


def _wall_cell(wall):
    """The median wall seconds, and how many entries resumed from a backup (their
    wall time counts the last process only)."""
    resumed = len(wall.get("resumed_seeds", []))
    return f"{wall['median']:.0f}" + (f" ({resumed} resumed)" if resumed else "")


def summarize_setting(setting):
    """Recomputes `rows` (per-row summaries) and `comparisons` from `entries`."""
    metrics = setting["metrics"]
    rows = {}
    for row, row_entries in setting.get("entries", {}).items():
        seeds = _seeds(row_entries)
        runs = [row_entries[s] for s in seeds]
        summary = {"seeds": [int(s) for s in seeds]}
        for metric in metrics:
            values = [float(run["metrics"][metric]) for run in runs]
            summary[metric] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "values": values,
            }
        walls = [run["wall_seconds"] for run in runs]
        # A resumed entry's wall time counts its last process only.
        summary["wall_seconds"] = {"per_seed": walls, "median": statistics.median(walls),
                                   "total": round(sum(walls), 1),
                                   "resumed_seeds": [int(s) for s, run in zip(seeds, runs)
                                                     if run.get("resumed")]}
        summary["train_seconds"] = [run["train_seconds"] for run in runs]
        diagnostics = {}
        for run in runs:
            for name, value in diagnostic_means(run.get("history", {})).items():
                diagnostics.setdefault(name, []).append(value)
        summary["diagnostics"] = {name: {"mean": statistics.fmean(v), "values": v}
                                  for name, v in diagnostics.items()}
        rows[row] = summary
    setting["rows"] = rows
    entries = setting.get("entries", {})
    comparisons = []
    for a, b in comparisons_of(entries):
        if a in entries and b in entries:
            compared = _paired(entries[a], entries[b], metrics[0])
            if compared is not None:
                comparisons.append({"a": a, "b": b, **compared})
    setting["comparisons"] = comparisons
    return setting


def comparisons_of(entries):
    """`COMPARISONS`, then each AugPro-FGSM row at another step against
    KD+AugPro-FGSM and against KD."""
    pairs = list(COMPARISONS)
    for row in entries:
        if row.startswith(STEP_ROW_PREFIX):
            pairs += [(row, "KD+AugPro-FGSM"), (row, "KD")]
    return pairs


#: The row name of AugPro-FGSM at another step (glue_distill's `--augpro-fgsm-steps`).
AUGPRO_FGSM_STEP_ROW = "KD+AugPro-FGSM ({:g} std)"
STEP_ROW_PREFIX = AUGPRO_FGSM_STEP_ROW.split("{")[0]


def _paired(a_entries, b_entries, metric):
    """The paired difference of two rows' `metric` over the seeds both have, or `None`."""
    seeds = [s for s in _seeds(a_entries) if s in b_entries]
    if not seeds:
        return None
    stats = paired_stats.paired_difference([a_entries[s]["metrics"][metric] for s in seeds],
                                           [b_entries[s]["metrics"][metric] for s in seeds])
    return {"metric": metric, "seeds": [int(s) for s in seeds], **stats}


def summarize_references(report):
    """For every setting with a `reference` (the same data and teacher under another
    runtime): each row shared with the reference, paired by seed, this setting minus
    the reference, in `reference_comparisons`."""
    for setting in report["settings"].values():
        reference = report["settings"].get(setting.get("reference"), {})
        if not reference or "metrics" not in setting:
            continue
        compared = []
        for row, row_entries in setting.get("entries", {}).items():
            if row in reference.get("entries", {}):
                stats = _paired(row_entries, reference["entries"][row], setting["metrics"][0])
                if stats is not None:
                    compared.append({"row": row, **stats})
        setting["reference_comparisons"] = compared


# === Markdown ===
def _percent(value):
    return f"{100 * value:.2f}"


def _diagnostic_cell(summary, suffix):
    values = [f"{name[: -len(suffix) - 1]} {100 * d['mean']:.1f}%"
              for name, d in summary.get("diagnostics", {}).items() if name.endswith(suffix)]
    return ", ".join(values)


def _teacher_title(setting):
    source = setting.get("teacher", {}).get("from_setting")
    return "Teacher" if source is None else f"Teacher (`{source}`'s)"


def _runtime_text(setting):
    runtime = setting.get("runtime") or {}
    return "".join(f" {key} `{value}`." for key, value in sorted(runtime.items()))


def render_setting(name, setting):
    metrics = setting["metrics"]
    data = setting["data"]
    teacher = setting.get("teacher", {}).get("metrics", {})
    lines = [
        f"### {name}",
        "",
        f"{data['labeled_train_examples']} labeled training examples, {data['distill_examples']} "
        f"{'labeled' if data['distill_labeled'] else 'unlabeled'} distillation examples, "
        f"{data['validation_examples']} dev examples; length {data['sequence_length']} "
        f"({100 * data['truncated_dev_fraction']:.1f}% of the dev examples truncated), batch "
        f"{data['batch_size']}; teacher {setting['recipe']['finetune']['epochs']} x "
        f"{setting['recipe']['finetune']['steps_per_epoch']} steps, every student "
        f"{setting['recipe']['distill']['epochs']} x "
        f"{setting['recipe']['distill']['steps_per_epoch']} steps.{_runtime_text(setting)}",
        "",
        "| row | seeds | " + " | ".join(f"{m} mean ± std" for m in metrics)
        + f" | per seed ({metrics[0]}) | wall s per seed (median) | "
        + " | ".join(title for _, title in DIAGNOSTICS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in metrics) + " | --- | --- | "
        + " | ".join("---" for _ in DIAGNOSTICS) + " |",
        f"| {_teacher_title(setting)} | | " + " | ".join(_percent(teacher[m]) if m in teacher else "" for m in metrics)
        + f" | | {setting.get('teacher', {}).get('wall_seconds', 0):.0f} | "
        + " | ".join("" for _ in DIAGNOSTICS) + " |",
    ]
    for row, summary in setting.get("rows", {}).items():
        cells = [f"{_percent(summary[m]['mean'])} ± {_percent(summary[m]['std'])}" for m in metrics]
        per_seed = ", ".join(_percent(v) for v in summary[metrics[0]]["values"])
        diagnostics = [_diagnostic_cell(summary, suffix) for suffix, _ in DIAGNOSTICS]
        lines.append(f"| {row} | {len(summary['seeds'])} | " + " | ".join(cells)
                     + f" | {per_seed} | {_wall_cell(summary['wall_seconds'])} | "
                     + " | ".join(diagnostics) + " |")
    if setting.get("comparisons"):
        lines += ["", f"Paired differences ({metrics[0]}, points, same seeds; 95% bootstrap "
                  "interval over seeds; wins/ties/losses of the first row):", "",
                  "| comparison | seeds | per seed | mean | 95% interval | W/T/L |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [_difference_cells(f"{c['a']} − {c['b']}", c) for c in setting["comparisons"]]
    if setting.get("reference_comparisons"):
        lines += ["", f"Against `{setting['reference']}` ({metrics[0]}, points, this setting − "
                  f"`{setting['reference']}`, same row and seed; 95% bootstrap interval; "
                  "wins/ties/losses of this setting):", "",
                  "| row | seeds | per seed | mean | 95% interval | W/T/L |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [_difference_cells(c["row"], c) for c in setting["reference_comparisons"]]
    curves = _dev_curves(setting)
    if curves:
        lines += ["", f"Dev {metrics[0]} after every epoch (mean over seeds; the curve a row's "
                  "best epoch is picked from):", ""] + curves
    curves = _loss_curves(setting)
    if curves:
        lines += ["", "Augmentation losses per epoch (mean over seeds):", ""] + curves
    lines.append("")
    return lines


def _difference_cells(title, c):
    per_seed = ", ".join(f"{100 * d:+.2f}" for d in c["differences"])
    interval = "" if c["ci95"] is None else (
        f"[{100 * c['ci95'][0]:+.2f}, {100 * c['ci95'][1]:+.2f}]")
    return (f"| {title} | {c['n']} | {per_seed} | {100 * c['mean']:+.2f} | {interval} | "
            f"{c['wins']}/{c['ties']}/{c['losses']} |")


def _mean_curve(runs):
    """The epoch-by-epoch mean of equally long prefixes of `runs` (lists of values)."""
    epochs = min(len(v) for v in runs)
    return [statistics.fmean(v[i] for v in runs) for i in range(epochs)]


def _dev_curves(setting):
    metric = setting["metrics"][0]
    lines = []
    for row, row_entries in setting.get("entries", {}).items():
        runs = [run["history"]["validation"][metric] for run in row_entries.values()
                if run.get("history", {}).get("validation", {}).get(metric)]
        if runs:
            lines.append(f"- {row} ({len(runs)} seeds): "
                         + ", ".join(_percent(m) for m in _mean_curve(runs)))
    return lines


def _loss_curves(setting):
    lines = []
    for row, row_entries in setting.get("entries", {}).items():
        per_name = {}
        for run in row_entries.values():
            for name, values in run.get("history", {}).get("train", {}).items():
                if name.endswith("_loss") and name not in BASE_LOGS:
                    per_name.setdefault(name, []).append(values)
        for name, runs in per_name.items():
            lines.append(f"- {row}, `{name}`: "
                         + ", ".join(f"{m:.4g}" for m in _mean_curve(runs)))
    return lines


def render_sweep(sweep):
    lines = ["### KD sweep (learning rate x steps)", "",
             f"Setting `{sweep['setting']}`, plain KD, dev {sweep['metric']} after every epoch "
             f"of {sweep['steps_per_epoch']} steps (the curve), seeds {sweep['seeds']}.", "",
             "| learning rate | steps | seed | dev per epoch | best (epoch) | wall s |",
             "| --- | --- | --- | --- | --- | --- |"]
    for point in sweep["points"]:
        for seed, run in sorted(point["entries"].items(), key=lambda kv: int(kv[0])):
            curve = run["history"].get("validation", {}).get(sweep["metric"], [])
            best = max(range(len(curve)), key=curve.__getitem__) if curve else None
            best_text = "" if best is None else f"{_percent(curve[best])} ({best + 1})"
            lines.append(f"| {point['learning_rate']:g} | {point['steps']} | {seed} | "
                         + ", ".join(_percent(v) for v in curve)
                         + f" | {best_text} | {run['wall_seconds']:.0f} |")
    lines.append("")
    return lines


def render_markdown(report):
    """Markdown tables of a report: the sweep, then per setting rows and comparisons."""
    lines = []
    if report.get("sweep"):
        lines += render_sweep(report["sweep"])
    for name, setting in report["settings"].items():
        if setting.get("entries"):  # a setting that only gave the sweep its teacher has none
            lines += render_setting(name, setting)
    return "\n".join(lines)
