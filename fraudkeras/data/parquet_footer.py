"""The row counts of a Parquet file's row groups, read from its footer.

polars does not expose a file's row groups, and a sliced ``scan_parquet`` decodes
every row group the slice touches, whole: 65,536-row slices of a file written in
262,144-row groups decoded each group four times. :func:`row_group_rows` reads the
footer (Thrift compact protocol, ``FileMetaData.row_groups[i].num_rows``) so that
:mod:`fraudkeras.data.streaming` can cut its chunks at row-group boundaries.
Nothing but the footer is read; values are skipped, not decoded.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from fraudkeras._core.errors import DataError

_MAGIC = b"PAR1"
# compact-protocol type ids
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def byte(self) -> int:
        value = self.data[self.at]
        self.at += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind: int) -> Any:
        if kind in (_TRUE, _FALSE):  # a struct field's bool is in its header
            return kind == _TRUE
        if kind == _BYTE:
            return self.byte()
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            self.at += 8
            return None
        if kind == _BINARY:
            size = self.varint()
            self.at += size
            return None
        if kind in (_LIST, _SET):
            header = self.byte()
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            if element in (_TRUE, _FALSE):  # a list's bools take a byte each
                self.at += size
                return None
            return [self.value(element) for _ in range(size)]
        if kind == _MAP:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.value(types >> 4)
                    self.value(types & 0x0F)
            return None
        if kind == _STRUCT:
            return self.struct()
        raise DataError(f"unknown Thrift type {kind}")

    def struct(self) -> dict[int, Any]:
        fields: dict[int, Any] = {}
        last = 0
        while True:
            header = self.byte()
            kind = header & 0x0F
            if kind == 0:
                return fields
            delta = header >> 4
            last = last + delta if delta else self.zigzag()
            fields[last] = self.value(kind)


def row_group_rows(path: str | os.PathLike[str]) -> list[int]:
    """The number of rows of each of ``path``'s row groups, in file order."""
    with open(path, "rb") as file:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        if size < 12:
            raise DataError(f"{path}: not a Parquet file (too short)")
        file.seek(size - 8)
        tail = file.read(8)
        (length,) = struct.unpack("<I", tail[:4])
        if tail[4:] != _MAGIC or length > size - 12:
            raise DataError(f"{path}: not a Parquet file (no footer)")
        file.seek(size - 8 - length)
        footer = file.read(length)
    try:
        metadata = _Reader(footer).struct()
        return [int(group[3]) for group in metadata.get(4) or []]
    except (IndexError, KeyError, TypeError) as error:
        raise DataError(f"{path}: unreadable Parquet footer ({error!r})") from error
