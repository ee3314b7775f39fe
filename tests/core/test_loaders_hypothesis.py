"""Property tests: bad input to the loaders and make_session raises InputError and nothing else.

1,300 examples in all: random bytes, corrupted and truncated files, random NPZ / CSV contents and
random make_session arguments.
"""

import csv
import datetime
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glm_core.csv_columns import read_csv_columns
from glm_core.errors import InputError
from glm_core.loaders import load_csv, load_npz, load_upload
from glm_core.session import Session, Variable, make_session

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXTENSIONS = st.sampled_from(["x.npz", "x.csv", "x.nwb", "x.NPZ", "x.mat", "x", "x.csv.gz"])
BIN_WIDTHS = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.025, 0.05, "a"])
)


def accepts_or_input_error(load, *args):
    """Call ``load``; a result must be a Session, an exception must be InputError."""
    try:
        result = load(*args)
    except InputError as err:
        assert str(err)
        return
    assert isinstance(result, Session)


def valid_npz() -> bytes:
    buffer = io.BytesIO()
    t = np.arange(0, 5, 0.01)
    np.savez(
        buffer, spike_times=np.linspace(0.1, 4.9, 40), spike_unit=np.arange(40) % 3, var_t=t,
        **{"var:x[cm]": np.sin(t), "var:hd[rad,circular]": t % 6 - 3},
    )
    return buffer.getvalue()


def valid_csv() -> bytes:
    text = io.StringIO()
    rows = [["bin_width", "count:a", "var:x[cm]", "var:hd[rad;circular]"]]
    rows += [[0.02 if i == 0 else "", i % 3, i * 0.5, (i % 7) - 3] for i in range(60)]
    csv.writer(text).writerows(rows)
    return text.getvalue().encode()


def valid_nwb(path) -> bytes:
    pynwb = pytest.importorskip("pynwb")
    from pynwb.behavior import Position, SpatialSeries

    nwb = pynwb.NWBFile("t", "id", datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    nwb.add_unit(spike_times=np.linspace(0.1, 1.9, 20))
    position = Position()
    t = np.arange(0, 2, 0.02)
    position.add_spatial_series(
        SpatialSeries(name="p", data=np.column_stack([t, t]), timestamps=t, reference_frame="r")
    )
    nwb.create_processing_module("behavior", "b").add(position)
    with pynwb.NWBHDF5IO(str(path), "w") as writer:
        writer.write(nwb)
    return path.read_bytes()


GOOD = {"x.npz": valid_npz(), "x.csv": valid_csv()}


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    return {**GOOD, "x.nwb": valid_nwb(tmp_path_factory.mktemp("nwb") / "x.nwb")}


def test_good_files_load(good_files):
    for name, data in good_files.items():
        assert isinstance(load_upload(name, data, None), Session)


@settings(max_examples=250, **SETTINGS)
@given(name=EXTENSIONS, data=st.binary(max_size=2000), bin_width=BIN_WIDTHS)
def test_random_bytes(name, data, bin_width):
    accepts_or_input_error(load_upload, name, data, bin_width)


@settings(max_examples=300, **SETTINGS)
@given(
    which=st.sampled_from(["x.npz", "x.csv", "x.nwb"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=5),
)
def test_truncated_or_corrupted_files(good_files, which, cut, flips):
    data = bytearray(good_files[which])
    for where, byte in flips:
        data[int(where * (len(data) - 1))] = byte
    data = bytes(data[: max(1, int(cut * len(data)))]) if cut < 0.98 else bytes(data)
    accepts_or_input_error(load_upload, which, data, 0.05)


def arrays(length):
    """1-D or odd-shaped arrays of many dtypes, lengths near ``length``."""
    n = st.one_of(st.just(length), st.integers(0, 12))
    floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return st.one_of(
        n.flatmap(lambda k: st.lists(floats, min_size=k, max_size=k).map(np.array)),
        n.flatmap(lambda k: st.lists(st.integers(-3, 5), min_size=k, max_size=k).map(np.array)),
        n.map(lambda k: np.arange(k) % 2 == 0),
        n.map(lambda k: np.array(["u", "v"] * k)[:k]),
        n.map(lambda k: np.ones(k) * (1 + 1j)),
        st.sampled_from([np.zeros((3, 2)), np.float64(0.02), np.array(0.0), np.array([], int)]),
    )


NPZ_KEYS = st.sampled_from(
    ["bin_width", "valid", "count:a", "count:b", "var:x", "var:hd[rad,circular]", "var:[cm]",
     "var:x[cm]", "spike_times", "spike_unit", "var_t", "t", "count:", "var:y[", "other"]
)


@settings(max_examples=300, **SETTINGS)
@given(
    contents=st.integers(1, 20).flatmap(
        lambda n: st.dictionaries(NPZ_KEYS, arrays(n), min_size=1, max_size=6)
    ),
    bin_width=BIN_WIDTHS,
)
def test_random_npz_contents(contents, bin_width):
    buffer = io.BytesIO()
    np.savez(buffer, **contents)
    accepts_or_input_error(load_npz, buffer.getvalue(), bin_width)


CELLS = st.one_of(
    st.sampled_from(["", "nan", "inf", "-1", "0", "1", "2", "0.02", "1e400", "a", "t1c2", " 3 "]),
    st.floats(allow_nan=True).map(repr),
    st.text(max_size=4),
)
CSV_HEADERS = st.sampled_from(
    ["bin_width", "valid", "count:a", "count:b", "var:x", "var:hd[rad,circular]", "time",
     "spike_unit", "var:y[cm]", "other", ""]
)


@settings(max_examples=250, **SETTINGS)
@given(
    header=st.lists(CSV_HEADERS, min_size=1, max_size=5),
    rows=st.lists(st.lists(CELLS, min_size=0, max_size=6), max_size=15),
    bin_width=BIN_WIDTHS,
)
def test_random_csv_contents(header, rows, bin_width):
    text = io.StringIO()
    csv.writer(text).writerows([header] + rows)
    accepts_or_input_error(load_csv, text.getvalue().encode(), bin_width)


@settings(max_examples=200, **SETTINGS)
@given(
    n=st.integers(0, 8),
    data=st.data(),
    bin_width=st.one_of(BIN_WIDTHS, st.just([0.1, 0.2])),
    n_units=st.integers(0, 3),
)
def test_random_make_session(n, data, bin_width, n_units):
    counts = data.draw(st.one_of(arrays(n), st.just(np.ones((n, n_units)))))
    variables = data.draw(
        st.lists(
            st.one_of(
                st.builds(Variable, st.sampled_from(["x", "y"]), arrays(n), st.just("cm"),
                          st.booleans()),
                st.just("not a variable"),
            ),
            max_size=3,
        )
    )
    valid = data.draw(st.one_of(st.none(), arrays(n)))
    names = data.draw(st.one_of(st.none(), st.lists(st.sampled_from(["a", "b"]), max_size=3)))
    accepts_or_input_error(make_session, bin_width, variables, counts, names, valid)


def reference_columns(data: bytes, text: set) -> dict:
    """The stdlib csv module's reading of a table, cell by cell (the reader before pandas)."""
    lines = io.StringIO(data.decode("utf-8-sig"), newline="")
    rows = [r for r in csv.reader(lines) if any(c.strip() for c in r)]
    header = [h.strip() for h in rows[0]]
    cells = {h: [r[j].strip() for r in rows[1:]] for j, h in enumerate(header)}
    return {h: np.array(v, dtype=str) if h in text else np.array([c or "nan" for c in v], float)
            for h, v in cells.items()}


NUMBER_CELLS = st.one_of(
    st.floats(allow_nan=False, width=64).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", " 3 ", "2.5 ", "NaN", "-0"]),
)
TEXT_CELLS = st.one_of(st.sampled_from(["", "t1c2", "7", "a,b", 'say "hi"', " pad "]),
                       st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n"),
                               max_size=5))
NAMES = st.sampled_from(["var:x[cm]", "var:hd[rad,circular]", 'var:"q"', "count:a", "time"])


@settings(max_examples=150, **SETTINGS)
@given(
    names=st.lists(NAMES, min_size=1, max_size=4, unique=True),
    n_rows=st.integers(1, 30),
    data=st.data(),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    blank_rows=st.lists(st.integers(0, 30), max_size=3),
)
def test_csv_reader_matches_the_csv_module(names, n_rows, data, quoting, newline, blank_rows):
    """Quoted names and cells, blank cells and rows, padding, odd spellings of numbers and line
    endings: the vectorised reader gives the csv module's cells, as floats or text."""
    header = names + ["spike_unit"]
    rows = [[data.draw(NUMBER_CELLS) for _ in names] + [data.draw(TEXT_CELLS)]
            for _ in range(n_rows)]
    for i in blank_rows:
        rows.insert(min(i, len(rows)), [""] * len(header))
    text = io.StringIO()
    csv.writer(text, quoting=quoting, lineterminator=newline).writerows([header] + rows)
    raw = text.getvalue().encode()
    expected = reference_columns(raw, {"spike_unit"})
    if all(not any(c.strip() for c in r) for r in rows):
        with pytest.raises(InputError, match="at least one data row"):
            read_csv_columns(raw, "f", text=("spike_unit",))
        return
    got = read_csv_columns(raw, "f", text=("spike_unit",))
    assert list(got) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@settings(max_examples=60, **SETTINGS)
@given(n_rows=st.integers(2, 20), data=st.data())
def test_csv_reader_names_a_row_with_the_wrong_number_of_cells(n_rows, data):
    row = data.draw(st.integers(0, n_rows - 1))
    cells = data.draw(st.sampled_from([1, 2, 4, 5]))
    rows = [["1", "2", "3"] for _ in range(n_rows)]
    rows[row] = [str(i) for i in range(cells)]
    text = io.StringIO()
    csv.writer(text).writerows([["count:a", "var:x", "var:y"]] + rows)
    with pytest.raises(InputError, match=f"data row {row + 1} has {cells} cells, the header has 3"):
        read_csv_columns(text.getvalue().encode(), "f")
