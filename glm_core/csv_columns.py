"""Read a CSV file into named columns, vectorised: a 50 MB upload parses in about a second.

The header row goes through the ``csv`` module (quoted names may hold commas); the body through
pandas' C parser (pandas is installed with Panel and HoloViews anyway). The shape of every row is
checked on the raw bytes with numpy first, so that a short or long row is named in the message
instead of being padded or misread. A blank cell is NaN in a numeric column and ``""`` in a text
column; cells are stripped of surrounding spaces; rows whose cells are all blank are skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection

import numpy as np
import pandas as pd

from .errors import InputError

_QUOTE, _COMMA = ord('"'), ord(",")
_NOT_CONTENT = np.zeros(256, bool)
_NOT_CONTENT[list(b' \t\r\n,"')] = True


def read_csv_columns(data: bytes, label: str, text: Collection[str] = ()) -> dict[str, np.ndarray]:
    """Columns by header name: float64 arrays, except the columns named in ``text`` (str arrays).

    Raises InputError, with the row or cell at fault, for a file that is not UTF-8, has no header
    and data row, repeats a column name, has a row with another number of cells than the header,
    or holds a cell that is not a number in a numeric column.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{label} is not a UTF-8 text (CSV) file") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    raw = np.frombuffer(data, np.uint8)
    starts, stops, cells, has_content = _rows(raw)
    filled = np.flatnonzero(has_content)
    if len(filled) < 2:
        raise InputError(f"{label} needs a header row and at least one data row")
    head = filled[0]
    try:
        header = [h.strip() for h in next(csv.reader([data[starts[head]:stops[head]].decode()]))]
    except csv.Error as err:
        raise InputError(f"{label} is not a readable CSV file ({err})") from None
    if len(set(header)) != len(header):
        raise InputError(f"{label} has repeated column names")
    wrong = np.flatnonzero(cells[filled[1:]] != len(header))
    if wrong.size:
        row = wrong[0] + 1
        raise InputError(f"{label}: data row {row} has {cells[filled[row]]} cells, the header has "
                         f"{len(header)}")
    table = _parse_body(data[stops[head]:], header, set(text) & set(header), label)
    columns = {name: _cells(table[name]) for name in header}
    filled_rows = np.logical_or.reduce([_filled(c) for c in columns.values()])
    if not filled_rows.any():
        raise InputError(f"{label} needs a header row and at least one data row")
    columns = {name: c[filled_rows] for name, c in columns.items()}
    return {name: c if name in text else _floats(name, c) for name, c in columns.items()}


def _rows(raw: np.ndarray):
    """Start and stop byte of every row, its number of cells, and whether it holds anything but
    spaces, commas and quotes. Works on the positions of those characters and line breaks only.
    A line break or comma between quotes belongs to a cell: the quotes before it are odd in
    number (a quote inside a quoted cell is written twice, which keeps the count even)."""
    maybe = np.flatnonzero(raw <= _COMMA)  # one cheap pass: every mark is at most ","
    marks = maybe[_NOT_CONTENT[raw[maybe]]]
    kind = raw[marks]
    quote = kind == _QUOTE
    outside = ~np.logical_xor.accumulate(quote) if quote.any() else np.ones(kind.size, bool)
    is_break = ((kind == ord("\n")) | (kind == ord("\r"))) & outside
    row = np.cumsum(is_break)
    breaks = marks[is_break]
    starts = np.concatenate([[0], breaks + 1])
    stops = np.concatenate([breaks, [raw.size]])
    cells = np.bincount(row[(kind == _COMMA) & outside], minlength=starts.size) + 1
    blank_bytes = np.bincount(row[~is_break], minlength=starts.size)
    return starts, stops, cells, stops - starts > blank_bytes


def _parse_body(body: bytes, header, text, label) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.BytesIO(body), header=None, names=header, dtype={name: str for name in text},
            keep_default_na=False, na_values=[""], skipinitialspace=True, encoding="utf-8",
            engine="c", low_memory=False,
            # blank lines are dropped afterwards with rows of blank cells: pandas' own skipping
            # loses the first empty cell of a row that follows a blank line ended by "\r" alone
            skip_blank_lines=False)
    except (ValueError, pd.errors.ParserError, OverflowError) as err:
        raise InputError(f"{label} is not a readable CSV file ({err})") from None


def _cells(column: pd.Series) -> np.ndarray:
    """A numeric column as floats (blank: NaN), any other as stripped text (blank: "")."""
    if column.dtype.kind in "biuf":
        return column.to_numpy(float)
    return np.char.strip(column.to_numpy(str, na_value=""))


def _filled(cells: np.ndarray) -> np.ndarray:
    return ~np.isnan(cells) if cells.dtype.kind == "f" else cells != ""


def _floats(name: str, cells: np.ndarray) -> np.ndarray:
    """Text cells as numbers (pandas leaves "nan", "inf", "1e400" as text)."""
    if cells.dtype.kind == "f":
        return cells
    cells = np.where(cells == "", "nan", cells)
    try:
        return cells.astype(float)
    except ValueError:
        bad = next(c for c in cells if not _is_float(c))
        raise InputError(f"column {name!r}: {bad[:40]!r} is not a number") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
