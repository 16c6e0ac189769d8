"""Fast path of the emulator's batch jobs: JSON Lines of numbers decoded straight into arrays.

Owns: reading a JSON Lines input object in large blocks of raw lines (line numbers kept for
error messages), a strict bulk decoder that turns a block of rectangular number arrays (every
line shaped like the first) into ONE numpy array without a Python object per value, or says
it cannot (`None`: the caller takes the JSON path, which validates row by row), the wire of
the TF replica's `:predictArrays` route (instances as .npy in the narrowest dtype that holds
them exactly, outputs as .npz) and each row's prediction as JSON text, byte for byte what TF
Serving's REST `predictions` holds for it.

Strict on purpose: the decoder accepts only text that is valid JSON (no `+1`, `.5`, `01`,
`NaN`), because the input line is echoed as is into the outputs.

Must not: import TensorFlow or deployer.serving (replicas are processes), write outputs, or
touch job state.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import orjson

ARRAYS_ACTION = ":predictArrays"  # the TF replica's route (deployer.serving.arrays)
_READ = 4 << 20  # bytes per read of the input object
_NUMBER_INT = b"0123456789-"
_NUMBER = b"0123456789-.eE+"
_MINUS, _PLUS, _DOT = 45, 43, 46  # b"-", b"+", b"."
# Rows decoded at once: the temporaries (about 40 bytes per byte of text) stay a few MB,
# whatever the job's batch size.
_SLICE = 256
_MAX_DIGITS = 15  # longer integers take the JSON path (int64 cannot overflow below that)
# '[' and ']' become blanks and line ends commas: np.fromstring then reads the values in order.
_FLATTEN = bytes.maketrans(b"[]\n", b"  ,")


@dataclass(frozen=True)
class Block:
    """Consecutive non-blank lines of one input object."""

    source: str  # gs://bucket/object
    lines: list[bytes]  # each line's text, stripped, as read (echoed into the outputs)
    numbers: list[int]  # each line's 1-based line number in `source`


def iter_blocks(handle: BinaryIO, source: str, size: int) -> Iterator[Block]:
    """The object's non-blank lines, `size` at a time (the last block may be shorter).

    Reads in large chunks and splits them with bytes methods: no Python object per line
    beyond the line itself.
    """
    lines: list[bytes] = []
    numbers: list[int] = []
    line_no = 0
    rest = b""
    while True:
        chunk = handle.read(_READ)
        if not chunk:
            parts = [rest] if rest else []
        else:
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
        for part in parts:
            line_no += 1
            text = part.strip()
            if text:
                lines.append(text)
                numbers.append(line_no)
                if len(lines) >= size:
                    yield Block(source, lines, numbers)
                    lines, numbers = [], []
        if not chunk:
            break
    if lines:
        yield Block(source, lines, numbers)


def decode_block(lines: Sequence[bytes]) -> np.ndarray | None:
    """The lines as one array [len(lines), *shape of the first line], or None.

    None unless every line is a JSON array of numbers, rectangular, shaped like the first
    line and written the same way (same brackets, commas and `, ` spacing): then only the
    numbers differ, and they are read in bulk. Integers come back in the narrowest integer
    dtype that holds them (MNIST pixels: uint8), anything with a fraction or exponent as
    float64 (what JSON parsing would give).
    """
    if not lines:
        return None
    shape = _shape_of(lines[0])
    if shape is None:
        return None
    first = lines[0]
    # json.dumps' default separators, seen on the first line (searching the whole block
    # for two bytes would cost more than the replace; a later line that differs fails the
    # skeleton check, and the block takes the JSON path).
    spaced = b", " in first
    if spaced:
        first = first.replace(b", ", b",")
    per_row = int(np.prod(shape))
    parts = []
    for at in range(0, len(lines), _SLICE):
        part = _decode_slice(lines[at : at + _SLICE], first, spaced=spaced, per_row=per_row)
        if part is None:
            return None
        parts.append(part)
    # Slices of different dtypes meet in one that holds both exactly (uint8 + int8: int16).
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return values.reshape((len(lines), *shape))


def _decode_slice(
    lines: Sequence[bytes], first: bytes, *, spaced: bool, per_row: int
) -> np.ndarray | None:
    text = b"\n".join(lines)
    if spaced:
        text = text.replace(b", ", b",")
    # Integers unless the first line has a fraction or exponent (or the integer skeleton
    # does not match: a later line has one).
    floats = b"." in first or b"e" in first or b"E" in first
    if not floats and not _same_skeleton(text, first, _NUMBER_INT, len(lines)):
        floats = True
    if floats and not _same_skeleton(text, first, _NUMBER, len(lines)):
        return None
    data = np.frombuffer(text, dtype=np.uint8)
    values = _floats(text, data) if floats else _ints(data)
    if values is None or values.size != per_row * len(lines):
        return None
    return narrow(values)


def _same_skeleton(text: bytes, first: bytes, number: bytes, rows: int) -> bool:
    """Every line has the first line's brackets, commas and spaces: only numbers differ.
    (A space next to a number is then refused by the checks of `_ints` / `_floats`.)"""
    return text.translate(None, number) == b"\n".join(
        itertools.repeat(first.translate(None, number), rows)
    )


def _shape_of(line: bytes) -> tuple[int, ...] | None:
    """The shape of one line's value when it is a non-empty rectangular array of numbers."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, list):
        return None
    try:
        array = np.asarray(value)
    except ValueError:  # ragged
        return None
    # Booleans are not numbers here (JSON true/false); strings and objects take the JSON path.
    if array.dtype.kind not in "iuf" or array.size == 0:
        return None
    return tuple(int(d) for d in array.shape)


def _table(allowed: bytes) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[list(allowed)] = True
    return table


_BEFORE = _table(b"[,")  # what may precede a number (or its '-')
_AFTER = _table(b",]")  # what may follow a number
_EXPONENT = _table(b"eE")
_SIGN = _table(b"+-")
_NUMBER_BYTES = _table(_NUMBER)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the runs of True in `mask` (ends exclusive). The text starts with
    '[' and ends with ']', so no run touches either end."""
    edges = np.flatnonzero(mask[1:] != mask[:-1]) + 1
    return edges[0::2], edges[1::2]


def _any_of(data: np.ndarray, allowed: bytes) -> np.ndarray:
    out: np.ndarray = data == allowed[0]
    for b in allowed[1:]:
        out |= data == b
    return out


def _ints(data: np.ndarray) -> np.ndarray | None:
    digits = data - np.uint8(48)
    is_digit = digits < 10
    # Validation is done on the bytes (cheap passes over a uint8 array), not per number.
    # The text starts with '[' and ends with ']', so the shifted views below never miss a
    # number. Pairs (left byte, right byte):
    left, right = is_digit[:-1], is_digit[1:]
    minus = data == _MINUS
    opens = _any_of(data, b"[,")
    starts_at = right & ~left  # right is a number's first digit
    # What precedes a number: '[', ',' or a '-' that itself follows '[' or ','; what follows
    # it: ',' or ']'; no leading zeros.
    if (starts_at & ~(opens | minus)[:-1]).any():
        return None
    if (minus[1:] & ~opens[:-1]).any() or (minus[:-1] & ~right).any():
        return None
    if (left & ~right & ~_any_of(data[1:], b",]")).any():
        return None
    zero_first = starts_at[:-1] & (digits[1:-1] == 0) & is_digit[2:]
    if zero_first.any():
        return None  # leading zeros are not JSON
    # Index i of `before` is the byte before a number, of `last` its last digit.
    before = np.flatnonzero(starts_at)
    if not len(before):
        return None
    last = np.flatnonzero(left & ~right)
    lengths = last - before
    longest = int(lengths.max())
    if longest > _MAX_DIGITS:
        return None  # past float64's exact integers: the JSON path
    after = digits[1:]  # after[i] is the digit following byte i
    values: np.ndarray = after[before].astype(np.int64)
    for k in range(1, longest):
        longer = np.flatnonzero(lengths > k)
        values[longer] = values[longer] * 10 + after[before[longer] + k]
    if minus.any():
        values[data[before] == _MINUS] *= -1
    return values


def _floats(text: bytes, data: np.ndarray) -> np.ndarray | None:
    is_digit = (data - np.uint8(48)) < 10
    is_number = _NUMBER_BYTES[data]
    starts, ends = _runs(is_number)
    if not len(starts) or not (_BEFORE[data[starts - 1]].all() and _AFTER[data[ends]].all()):
        return None
    # The JSON number grammar, checked where np.fromstring is laxer: '.' between digits,
    # an exponent after a digit and before a digit or sign, '+' only after an exponent,
    # '-' only at a number's start or after an exponent, no leading zeros.
    at = np.flatnonzero(is_number & ~is_digit)
    if len(at) and (at[0] == 0 or at[-1] + 1 >= len(data)):
        return None
    kind, prev, after = data[at], data[at - 1], data[at + 1]
    prev_digit, next_digit = is_digit[at - 1], is_digit[at + 1]
    exp_prev = _EXPONENT[prev]
    ok = np.where(
        kind == _DOT,
        prev_digit & next_digit,
        np.where(
            kind == _PLUS,
            exp_prev & next_digit,
            np.where(
                kind == _MINUS,
                (_BEFORE[prev] | exp_prev) & next_digit,
                prev_digit & (next_digit | _SIGN[after]),  # e / E
            ),
        ),
    )
    if not ok.all():
        return None
    first = np.where(data[starts] == _MINUS, starts + 1, starts)
    if bool(((data[first] == 48) & is_digit[np.minimum(first + 1, len(data) - 1)]).any()):
        return None
    try:
        values = np.fromstring(text.translate(_FLATTEN), dtype=np.float64, sep=",")
    except ValueError:  # e.g. "1.2.3": the grammar check above does not see it
        return None
    # np.fromstring reads an empty field ("[,1]") as -1: one value per number, or nothing.
    return values if values.size == len(starts) else None


def narrow(values: np.ndarray) -> np.ndarray:
    """Integers in the narrowest dtype that holds them exactly (MNIST pixels: one byte each
    instead of eight); other arrays unchanged."""
    if values.dtype.kind not in "iu" or values.dtype.itemsize == 1 or not values.size:
        return values
    low, high = int(values.min()), int(values.max())
    for dtype in (np.uint8, np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    return values


def npy_body(values: np.ndarray) -> bytes:
    """Instances as .npy in the narrowest exact dtype; the replica casts to the signature's."""
    buf = io.BytesIO()
    np.save(buf, narrow(values), allow_pickle=False)
    return buf.getvalue()


def read_npz(body: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(body), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def prediction_rows(outputs: dict[str, np.ndarray], rows: int) -> list[bytes] | None:
    """Each row's prediction as JSON text, as TF Serving's row format answers it (one output:
    its row; several: an object keyed by output name); None if the outputs have no row
    format (a scalar output, different batch sizes): the JSON path then reports it.

    orjson writes the same text for a float64 array as for the Python floats the replica's
    JSON path holds (`tolist()` of float32 values): the shortest form that reads back equal.
    """
    if not outputs or any(a.ndim == 0 or a.shape[0] != rows for a in outputs.values()):
        return None
    if len(outputs) == 1:
        (array,) = outputs.values()
        if array.ndim == 2 and array.shape[1] and array.dtype.kind == "f":
            # One dump for the whole batch, cut into rows: "[[a,b],[c,d]]" -> "[a,b]", "[c,d]".
            text = orjson.dumps(array.astype(np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
            return [b"[" + row + b"]" for row in text[2:-2].split(b"],[")]
        return [orjson.dumps(row) for row in array.tolist()]
    columns = {name: array.tolist() for name, array in outputs.items()}
    return [orjson.dumps({name: col[i] for name, col in columns.items()}) for i in range(rows)]
