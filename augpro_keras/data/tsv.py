"""Loading text classification data from the user's own TSV / CSV files."""

import array
import csv
import dataclasses
import difflib
import os

import numpy as np

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


def _decoded_lines(path):
    """Yields the lines of a UTF-8 file as str, line endings kept (a leading BOM dropped).

    The file is streamed; a byte that is not UTF-8 raises a `ValueError`
    naming its line and column.
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                start = error.start + (3 if number == 1 and raw.startswith(b"\xef\xbb\xbf") else 0)
                byte = raw[start:start + 1]
                raise ValueError(
                    f"{path}, line {number}, column {start + 1}: byte 0x{byte.hex()} is not "
                    "UTF-8 text. The file must be saved as UTF-8 (e.g. `iconv -f latin1 -t "
                    "utf-8 in.tsv > out.tsv`)."
                ) from None


def read_delimited_rows(path, delimiter):
    """Yields `(line_number, fields)` for every non-empty row of a text file.

    The file is streamed line by line as UTF-8 (a leading byte order mark is
    dropped); a byte that is not UTF-8 raises a `ValueError` naming its line
    and column. Rows end at `\\n` (or `\\r\\n`), as `tf.data.TextLineDataset`
    reads them. Tab separated files are read without quote handling, as
    GLUE's files need (their texts contain unbalanced `"`); other delimiters
    use standard CSV quoting (a quoted field may span lines; `line_number`
    is then the record's last line).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; expected a .tsv or .csv file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"File not found: {path}")
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(_decoded_lines(path), delimiter=delimiter, quoting=quoting)
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
    # "_" is refused: Python reads "1_000", TensorFlow's `to_number` does not.
    if "_" in text:
        return None
    try:
        return kind(text)
    except ValueError:
        return None


class _LabelScan:
    """What a streaming pass needs of the labels to map them, and its errors.

    `add(raw, line_number)` for every row, then `finish()` returns
    `(kind, label_names)`: kind "names" (ids by `label_names`), "class ids"
    or "scores". Only what the decision needs is kept (the first lines of
    each case and the distinct names), never the labels of every row.
    """

    def __init__(self, path, label_names):
        self.path = os.fspath(path)
        self.label_names = None
        if label_names is not None:
            self.label_names = tuple(str(name) for name in label_names)
        self.first_empty = self.first_unknown = self.first_negative = None
        self.first_number = self.first_word = None
        self.all_ints = self.all_floats = True
        self.words = set()

    def add(self, raw, line_number):
        if not raw.strip():
            self.first_empty = self.first_empty or line_number
            return
        if self.label_names is not None:
            if raw not in self.label_names and self.first_unknown is None:
                self.first_unknown = (line_number, raw)
            return
        value = _parse_number(raw, int)
        if value is None:
            self.all_ints = False
        elif value < 0 and self.first_negative is None:
            self.first_negative = (line_number, raw)
        if _parse_number(raw, float) is None:
            self.all_floats = False
            self.first_word = self.first_word or (line_number, raw)
            self.words.add(raw)
        else:
            self.first_number = self.first_number or (line_number, raw)

    def finish(self):
        path = self.path
        if self.first_empty is not None:
            raise ValueError(f"{path}, line {self.first_empty}: the label is empty.")
        if self.label_names is not None:
            if len(set(self.label_names)) != len(self.label_names):
                raise ValueError(f"`label_names` has duplicates: {self.label_names}")
            if self.first_unknown is not None:
                line_number, raw = self.first_unknown
                raise ValueError(
                    f"{path}, line {line_number}: label {raw!r} is not "
                    f"one of the allowed labels {list(self.label_names)}."
                )
            return "names", self.label_names
        if self.all_ints:
            if self.first_negative is not None:
                line_number, raw = self.first_negative
                raise ValueError(
                    f"{path}, line {line_number}: label {raw!r} is negative. Integer labels "
                    "are class ids 0, 1, 2, ...; give label names instead (data.label_names) "
                    "to use other values."
                )
            return "class ids", None
        if self.all_floats:
            return "scores", None
        if self.first_number is not None:
            (number_line, number), (word_line, word) = self.first_number, self.first_word
            raise ValueError(
                f"{path}: the labels mix numbers and names: line {number_line} has "
                f"{number!r}, line {word_line} has {word!r}. "
                "Use class ids 0, 1, ... throughout, or names throughout (data.label_names "
                "sets their order)."
            )
        return "names", tuple(sorted(self.words))


def _label_value(kind, names):
    """Python's mapping of a raw label of `kind` (see `_LabelScan`)."""
    if kind == "names":
        ids = {name: i for i, name in enumerate(names)}
        return ids.__getitem__
    return int if kind == "class ids" else float


def label_mapper(kind, names):
    """The same mapping in TensorFlow: a function from string labels to int32 ids or float32 scores.

    Build it outside the `tf.data` map that calls it (a name table is a resource).
    """
    import tensorflow as tf

    if kind == "scores":
        return lambda raw: tf.strings.to_number(tf.strings.strip(raw), tf.float32)
    if kind == "class ids":
        return lambda raw: tf.strings.to_number(tf.strings.strip(raw), tf.int32)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(names)), tf.range(len(names), dtype=tf.int32)), default_value=-1)
    return table.lookup


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

    return _scan_file(path, text_columns, label_column, label_names, delimiter, collect=True).examples


def text_classification_dataset(
    path, text_columns, label_column=None, label_names=None, delimiter=None
):
    """A TSV/CSV file as a `TextDataset`: its strings (and labels) in `tf.data`.

    The file is checked first by one streaming pass, with the errors (and
    label rules) of `load_text_classification_file`, which names the file
    and line of a bad row; that pass keeps the labels' kind and names and
    the line numbers of the rows, not the texts. The dataset then reads the
    file itself: a `.tsv` through `tf.data.TextLineDataset`, split at tabs,
    the header and blank lines filtered out by their line numbers; labels
    are mapped in the pipeline (`label_mapper`).

    So is a comma separated file without any `"`. One with quotes is read
    by `tf.data.Dataset.from_generator` over the same streaming reader as
    the check: its quoted fields may span lines
    and its quote rules are Python's `csv` module's, which
    `tf.data.experimental.CsvDataset` does not share (blank lines, stray
    quotes); a parser that disagreed with the check would shift labels.

    Args: those of `load_text_classification_file`.

    Returns:
        A `TextDataset` (`label_names` as `load_text_classification_file`
        gives them).

    Example:
    ```python
    train = text_classification_dataset("train.tsv", "sentence", "label")
    train.num_examples, train.label_names
    ```
    """
    import tensorflow as tf

    from augpro_keras.data.text_dataset import TextDataset

    if isinstance(text_columns, str):
        text_columns = [text_columns]
    scan = _scan_file(path, text_columns, label_column, label_names, delimiter, collect=False)
    names = ("texts_a", "texts_b")[:len(scan.text_indices)]
    indices = list(scan.text_indices) + ([] if scan.label_index is None else [scan.label_index])
    to_label = None if scan.label_index is None else label_mapper(scan.label_kind, scan.label_names)

    def element(*fields):
        texts = dict(zip(names, fields))
        return texts if to_label is None else (texts, to_label(fields[-1]))

    if scan.delimiter == "\t" or not _has_quotes(path):
        # Without quotes a row is one line split at its delimiter, as Python's csv reads it.
        rows = tsv_rows(path, scan.line_numbers, indices, element, delimiter=scan.delimiter)
        return TextDataset(rows, scan.num_examples, scan.label_names)

    def generate():
        rows = read_delimited_rows(path, scan.delimiter)
        next(rows)  # The header.
        for _, fields in rows:
            yield tuple(fields[i] for i in indices)

    rows = tf.data.Dataset.from_generator(
        generate, output_signature=tuple(tf.TensorSpec([], tf.string) for _ in indices))
    return TextDataset(rows.batch(1024).map(element).unbatch(), scan.num_examples,
                       scan.label_names)


def _has_quotes(path):
    """Whether a file holds a `"` anywhere (read in chunks of 1 MiB)."""
    with open(path, "rb") as f:
        return any(b'"' in chunk for chunk in iter(lambda: f.read(1 << 20), b""))


def tsv_rows(path, line_numbers, indices, to_element, lines_per_batch=1024, delimiter="\t"):
    """The rows at `line_numbers` of a tab separated file, read by `tf.data`.

    `tf.data.TextLineDataset` reads the file; lines are taken in batches of
    `lines_per_batch` (vectorized: far faster than line by line), the lines
    not in `line_numbers` (1-based: the header, blank lines) are dropped,
    a leading byte order mark is removed, the fields split at tabs (or
    `delimiter`: a comma separated file without quotes), and
    `to_element(*columns)` maps the fields at `indices` (string batches)
    to elements, which are then unbatched.
    """
    import tensorflow as tf

    mask = np.zeros(line_numbers[-1] if len(line_numbers) else 0, dtype=bool)
    mask[np.asarray(line_numbers, dtype=np.int64) - 1] = True
    keep = tf.constant(mask)

    def parse(numbers, lines):
        kept = tf.gather(keep, numbers)
        numbers, lines = tf.boolean_mask(numbers, kept), tf.boolean_mask(lines, kept)
        lines = tf.where(numbers == 0, tf.strings.regex_replace(lines, "^\ufeff", ""), lines)
        fields = tf.strings.split(lines, delimiter)  # Ragged; every kept row has the columns.
        return to_element(*[tf.gather(fields.values, fields.row_starts() + i) for i in indices])

    lines = tf.data.TextLineDataset(os.fspath(path)).take(len(mask)).enumerate()
    return lines.batch(lines_per_batch).map(parse).unbatch()


@dataclasses.dataclass
class _FileScan:
    delimiter: str
    text_indices: list
    label_index: int | None
    num_examples: int
    line_numbers: array.array
    label_kind: str | None
    label_names: tuple | None
    examples: TextExamples | None


def _scan_file(path, text_columns, label_column, label_names, delimiter, collect):
    """One streaming pass: header, rows and labels checked; the texts kept when `collect`."""
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
    raw_labels = []
    line_numbers = array.array("q")
    scan = _LabelScan(path, label_names)
    for line_number, fields in rows:
        texts = [field(fields, index, path, line_number, name)
                 for index, name in zip(text_indices, text_columns)]
        line_numbers.append(line_number)
        if collect:
            for values, text in zip(columns, texts):
                values.append(text)
        if label_index is not None:
            raw = field(fields, label_index, path, line_number, label_column)
            scan.add(raw, line_number)
            if collect:
                raw_labels.append(raw)

    if not line_numbers:
        raise ValueError(
            f"{os.fspath(path)} has a header row but no examples: expected one example "
            f"per line after the header {header}."
        )
    kind, names = scan.finish() if label_index is not None else (None, None)
    examples = None
    if collect:
        labels = None
        if label_index is not None:
            to_value = _label_value(kind, names)
            labels = [to_value(raw) for raw in raw_labels]
        examples = TextExamples(
            texts_a=columns[0],
            texts_b=columns[1] if len(columns) == 2 else None,
            labels=labels,
            label_names=names if kind == "names" else None,
        )
    return _FileScan(delimiter, text_indices, label_index, len(line_numbers), line_numbers,
                     kind, names if kind == "names" else None, examples)
