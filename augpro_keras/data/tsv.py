"""Loading text classification data from the user's own TSV / CSV files."""

import csv
import difflib
import io
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


def _decode(path):
    """The text of a UTF-8 file (a leading byte order mark dropped).

    Raises a `ValueError` naming the line and column of the first byte
    that is not UTF-8.
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        byte = raw[error.start:error.start + 1]
        raise ValueError(
            f"{path}, line {line}, column {column}: byte 0x{byte.hex()} is not UTF-8 text. "
            "The file must be saved as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.tsv > "
            "out.tsv`)."
        ) from None


def read_delimited_rows(path, delimiter):
    """Yields `(line_number, fields)` for every non-empty row of a text file.

    The file is read as UTF-8 (a leading byte order mark is dropped); a
    byte that is not UTF-8 raises a `ValueError` naming its line and column.
    Tab separated files are read without quote handling, as GLUE's files
    need (their texts contain unbalanced `"`); other delimiters use standard
    CSV quoting.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; expected a .tsv or .csv file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"File not found: {path}")
    text = _decode(path)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield reader.line_num, fields
    except csv.Error as error:
        raise ValueError(f"{path}, line {reader.line_num}: {error}.") from None


def column_index(header, column, path):
    """Position of `column` in `header`, or an error listing the columns."""
    if column not in header:
        close = difflib.get_close_matches(column, header, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{os.fspath(path)}, line 1: column {column!r} not found in the header.{hint} "
            f"Available columns: {header}."
        )
    return header.index(column)


def check_header_delimiter(header, path, delimiter):
    """Refuses a header that is one column holding the other file type's delimiter."""
    other = {"\t": ",", ",": "\t"}.get(delimiter)
    if other is None or len(header) != 1 or other not in header[0]:
        return
    kind, other_kind = ("tab", "comma") if delimiter == "\t" else ("comma", "tab")
    extension = ".csv" if delimiter == "\t" else ".tsv"
    raise ValueError(
        f"{os.fspath(path)}, line 1: the header {header[0]!r} has no {kind} but "
        f"{other_kind}s. A {os.path.splitext(os.fspath(path))[1]} file separates its "
        f"columns with {kind}s; if this file is {other_kind}-separated, name it "
        f"{extension}."
    )


def field(fields, index, path, line_number, column_name):
    """`fields[index]`, or an error naming the short row."""
    if index >= len(fields):
        raise ValueError(
            f"{os.fspath(path)}, line {line_number}: expected column "
            f"{column_name!r} at position {index + 1} but the row has only "
            f"{len(fields)} field{'s' if len(fields) != 1 else ''}: {fields!r}"
        )
    return fields[index]


def _parse_number(text, kind):
    try:
        return kind(text)
    except ValueError:
        return None


def _labels_to_values(raw_labels, label_names, path, line_numbers):
    """Maps raw label strings to class ids (or float scores)."""
    path = os.fspath(path)
    for raw, line_number in zip(raw_labels, line_numbers):
        if not raw.strip():
            raise ValueError(f"{path}, line {line_number}: the label is empty.")
    if label_names is not None:
        label_names = tuple(str(name) for name in label_names)
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"`label_names` has duplicates: {label_names}")
        ids = {name: i for i, name in enumerate(label_names)}
        labels = []
        for raw, line_number in zip(raw_labels, line_numbers):
            if raw not in ids:
                raise ValueError(
                    f"{path}, line {line_number}: label {raw!r} is not "
                    f"one of the allowed labels {list(label_names)}."
                )
            labels.append(ids[raw])
        return labels, label_names
    ints = [_parse_number(raw, int) for raw in raw_labels]
    if all(value is not None for value in ints):
        for value, raw, line_number in zip(ints, raw_labels, line_numbers):
            if value < 0:
                raise ValueError(
                    f"{path}, line {line_number}: label {raw!r} is negative. Integer labels "
                    "are class ids 0, 1, 2, ...; give label names instead (data.label_names) "
                    "to use other values."
                )
        return ints, None
    floats = [_parse_number(raw, float) for raw in raw_labels]
    if all(value is not None for value in floats):
        return floats, None
    numeric = [i for i, value in enumerate(floats) if value is not None]
    if numeric:
        word = next(i for i, value in enumerate(floats) if value is None)
        number = numeric[0]
        raise ValueError(
            f"{path}: the labels mix numbers and names: line {line_numbers[number]} has "
            f"{raw_labels[number]!r}, line {line_numbers[word]} has {raw_labels[word]!r}. "
            "Use class ids 0, 1, ... throughout, or names throughout (data.label_names "
            "sets their order)."
        )
    names = tuple(sorted(set(raw_labels)))
    ids = {name: i for i, name in enumerate(names)}
    return [ids[raw] for raw in raw_labels], names


def first_line_with_label(path, label_column, value, delimiter=None):
    """The line number of the first row whose label column holds `value`, or `None`."""
    delimiter = delimiter or infer_delimiter(path)
    rows = read_delimited_rows(path, delimiter)
    _, header = next(rows, (None, []))
    if label_column not in header:
        return None
    index = header.index(label_column)
    for line_number, fields in rows:
        if index < len(fields) and fields[index] == value:
            return line_number
    return None


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
    wanted = text_columns + ([label_column] if label_column is not None else [])
    if first is None:
        raise ValueError(
            f"{os.fspath(path)} is empty: expected a header row naming the columns "
            f"{wanted}, then one example per line."
        )
    header = first[1]
    check_header_delimiter(header, path, delimiter)
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

    if not columns[0]:
        raise ValueError(
            f"{os.fspath(path)} has a header row but no examples: expected one example "
            f"per line after the header {header}."
        )
    labels, names = None, None
    if label_index is not None:
        labels, names = _labels_to_values(raw_labels, label_names, path, line_numbers)
    return TextExamples(
        texts_a=columns[0],
        texts_b=columns[1] if len(columns) == 2 else None,
        labels=labels,
        label_names=names,
    )
