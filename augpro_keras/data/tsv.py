"""Loading text classification data from the user's own TSV / CSV files."""

import csv
import os

from augpro_keras.data.examples import TextExamples

_DELIMITERS = {".tsv": "\t", ".csv": ","}


def infer_delimiter(path):
    """Returns the delimiter for a `.tsv` (tab) or `.csv` (comma) file name."""
    extension = os.path.splitext(str(path))[1].lower()
    if extension not in _DELIMITERS:
        raise ValueError(
            f"Cannot infer the delimiter of {str(path)!r} from its extension "
            f"{extension!r}: expected one of {sorted(_DELIMITERS)}. Pass "
            "`delimiter=` explicitly (e.g. '\\t' or ',')."
        )
    return _DELIMITERS[extension]


def read_delimited_rows(path, delimiter):
    """Yields `(line_number, fields)` for every non-empty row of a text file.

    The file is read as UTF-8 (a leading byte order mark is dropped). Tab
    separated files are read without quote handling, as GLUE's files need
    (their texts contain unbalanced `"`); other delimiters use standard CSV
    quoting.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"File not found: {path}")
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        for fields in reader:
            if fields:
                yield reader.line_num, fields


def column_index(header, column, path):
    """Position of `column` in `header`, or an error listing the columns."""
    if column not in header:
        raise ValueError(
            f"Column {column!r} not found in {os.fspath(path)}. "
            f"Available columns: {header}"
        )
    return header.index(column)


def field(fields, index, path, line_number, column_name):
    """`fields[index]`, or an error naming the short row."""
    if index >= len(fields):
        raise ValueError(
            f"{os.fspath(path)}, line {line_number}: expected column "
            f"{column_name!r} at position {index} but the row has only "
            f"{len(fields)} fields: {fields!r}"
        )
    return fields[index]


def _parse_number(text, kind):
    try:
        return kind(text)
    except ValueError:
        return None


def _labels_to_values(raw_labels, label_names, path, line_numbers):
    """Maps raw label strings to class ids (or float scores)."""
    if label_names is not None:
        label_names = tuple(str(name) for name in label_names)
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"`label_names` has duplicates: {label_names}")
        ids = {name: i for i, name in enumerate(label_names)}
        labels = []
        for raw, line_number in zip(raw_labels, line_numbers):
            if raw not in ids:
                raise ValueError(
                    f"{os.fspath(path)}, line {line_number}: label {raw!r} is not "
                    f"one of the allowed labels {list(label_names)}."
                )
            labels.append(ids[raw])
        return labels, label_names
    ints = [_parse_number(raw, int) for raw in raw_labels]
    if all(value is not None for value in ints):
        return ints, None
    floats = [_parse_number(raw, float) for raw in raw_labels]
    if all(value is not None for value in floats):
        return floats, None
    names = tuple(sorted(set(raw_labels)))
    ids = {name: i for i, name in enumerate(names)}
    return [ids[raw] for raw in raw_labels], names


def load_text_classification_file(
    path, text_columns, label_column=None, label_names=None, delimiter=None
):
    """Loads a TSV/CSV file with a header row into `TextExamples`.

    Labels are read as follows: with `label_names`, every label must be one
    of those strings and maps to its position; without, labels that are all
    integers become int class ids, labels that are all numbers become float
    scores (regression), and any other labels are strings mapped to ids in
    sorted order (the names are in `TextExamples.label_names`).

    Tab-separated files are read without quote handling (as GLUE's files
    need); comma-separated files use standard CSV quoting.

    Args:
        path: path of the file.
        text_columns: the name of the text column, or a list of one or two
            names (a text pair).
        label_column: name of the label column, or `None` for unlabeled data.
        label_names: optional list of the allowed label strings, in class-id
            order.
        delimiter: field delimiter; `None` infers it from the extension
            (`.tsv`: tab, `.csv`: comma).

    Returns:
        `TextExamples(texts_a, texts_b, labels, label_names)`.

    Example:
    ```python
    examples = load_text_classification_file(
        "reviews.csv", text_columns=["title", "body"], label_column="stars",
        label_names=["1", "2", "3", "4", "5"])
    texts_a, texts_b, labels = examples
    ```
    """
    if isinstance(text_columns, str):
        text_columns = [text_columns]
    text_columns = list(text_columns)
    if not 1 <= len(text_columns) <= 2 or not all(isinstance(c, str) for c in text_columns):
        raise ValueError(
            "`text_columns` must be a column name or a list of one or two column "
            f"names. Received: text_columns={text_columns!r}"
        )
    if label_column is not None and not isinstance(label_column, str):
        raise ValueError(
            f"`label_column` must be a column name or None. Received: {label_column!r}"
        )
    if label_names is not None and label_column is None:
        raise ValueError("`label_names` was given but `label_column` is None.")
    if not os.path.isfile(os.fspath(path)):
        wanted = text_columns + ([label_column] if label_column is not None else [])
        raise FileNotFoundError(
            f"File not found: {os.fspath(path)}. Expected a .tsv or .csv file with a header "
            f"row naming the columns {wanted}."
        )
    if delimiter is None:
        delimiter = infer_delimiter(path)

    rows = read_delimited_rows(path, delimiter)
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{os.fspath(path)} is empty: expected a header row.")
    header = first[1]
    text_indices = [column_index(header, c, path) for c in text_columns]
    label_index = None if label_column is None else column_index(header, label_column, path)

    columns = [[] for _ in text_columns]
    raw_labels, line_numbers = [], []
    for line_number, fields in rows:
        for values, index, name in zip(columns, text_indices, text_columns):
            values.append(field(fields, index, path, line_number, name))
        if label_index is not None:
            raw_labels.append(field(fields, label_index, path, line_number, label_column))
            line_numbers.append(line_number)

    labels, names = None, None
    if label_index is not None:
        labels, names = _labels_to_values(raw_labels, label_names, path, line_numbers)
    return TextExamples(
        texts_a=columns[0],
        texts_b=columns[1] if len(columns) == 2 else None,
        labels=labels,
        label_names=names,
    )
