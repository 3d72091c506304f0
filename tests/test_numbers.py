"""The one validator of numbers read from outside (deep.numbers)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from deep.numbers import ID_LIMIT, as_float, as_ids, check_npy_header, ids_from_text, load_npy, real, unique_names


@pytest.mark.parametrize("values, kind", [
    (np.array([True]), "bool"), (np.array([1j]), "complex"), (np.array(["1"]), "string"), (np.array([b"1"]), "bytes"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime"), (np.zeros(1, dtype=[("a", "i4")]), "structured"),
])
def test_only_real_dtypes_pass(values: np.ndarray, kind: str) -> None:
    with pytest.raises(ValueError, match=rf"f\.npy, array 'a', has dtype .*\({kind}\)"):
        real(values, "f.npy, array 'a',")


@pytest.mark.parametrize("values, dtype", [
    (np.array([0.0, 3.5e38]), np.float32), (np.array([-1e300]), np.float32),
    (np.array([np.longdouble("1e400")]), np.float64), (np.array([2.0**128]), np.float32),
])
def test_a_finite_value_past_the_target_range_is_an_overflow_not_a_nan(values: np.ndarray, dtype: type) -> None:
    with pytest.raises(ValueError, match=f"a finite value that overflows {np.dtype(dtype).name}"):
        as_float(values, "x", dtype)


def test_as_float_refuses_nan_and_inf_as_such_and_keeps_what_fits() -> None:
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="NaN or infinite"):
            as_float(np.array([0.0, bad]), "x")
    fits = np.array([np.finfo(np.float32).max, -1.5], dtype=np.float64)
    np.testing.assert_array_equal(as_float(fits, "x", np.float32), fits.astype(np.float32))
    assert as_float(np.array([2**62]), "x").dtype == np.float64


@pytest.mark.parametrize("values, message", [
    (np.array([0, 2**64 - 1], dtype=np.uint64), "holds 18446744073709551615, but ids must be below"),
    (np.array([0, -3], dtype=np.int8), "holds -3, a negative id"),
    (np.array([0.0, 2.5]), "holds 2.5, a non-integer id"),
    (np.array([0.0, np.nan]), "holds nan, a non-integer id"),
    (np.array([0, ID_LIMIT]), f"holds {ID_LIMIT}, but ids must be below {ID_LIMIT}"),
])
def test_ids_are_range_checked_in_their_own_dtype(values: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        as_ids(values, "x")


def test_ids_that_fit_become_int64() -> None:
    out = as_ids(np.array([0, 255], dtype=np.uint8), "x")
    assert out.dtype == np.int64 and out.tolist() == [0, 255]
    assert as_ids(np.array([3.0, 1.0]), "x").tolist() == [3, 1]


def test_a_header_promising_more_than_the_file_holds_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "big.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<i8", "fortran_order": False, "shape": (10**13,)})
        f.write(b"\0" * 16)
    with pytest.raises(ValueError, match=r"header promises shape \(10000000000000,\) of int64 .* holds 16 bytes"):
        load_npy(path, str(path))
    np.save(tmp_path / "ok.npy", np.arange(5))
    assert load_npy(tmp_path / "ok.npy", "ok").tolist() == [0, 1, 2, 3, 4]
    buffer = io.BytesIO()
    np.save(buffer, np.array(["a"]))
    buffer.seek(0)
    with pytest.raises(ValueError, match="string"):
        check_npy_header(buffer, len(buffer.getvalue()), "strings.npy")


def test_ids_from_text_name_the_line() -> None:
    assert ids_from_text(["1", " 0 ", "2"], "m.csv, column y").tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match=r"m.csv, column y, line 3: '1.5' is not an integer"):
        ids_from_text(["1", "1.5"], "m.csv, column y")
    with pytest.raises(ValueError, match=r"line 2: 99999999999999999999 overflows int64"):
        ids_from_text(["99999999999999999999"], "m.csv, column y")


def test_names_are_unique() -> None:
    unique_names(["a", "b"], "classes")
    with pytest.raises(ValueError, match="classes names 'b' twice"):
        unique_names(["b", "a", "b"], "classes")
