"""The IDX file format of MNIST and Fashion-MNIST, read and checked.

An IDX file is a 4-byte magic number, then one big-endian uint32 per dimension, then the data,
big-endian, row-major:

    magic = 0x00 0x00 <type code> <number of dimensions>
    type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64

so MNIST's images start with 0x00000803 (2051: uint8, 3 dims N×28×28) and its labels with
0x00000801 (2049: uint8, 1 dim N). Files may be gzipped (detected by the gzip magic 1f 8b, not
by the name).
"""

from __future__ import annotations

import gzip
import zlib

import numpy as np

from jdl.data.files import DataFileError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str) -> bytes:
    """The bytes of ``path``, gunzipped when the file starts with the gzip magic 1f 8b.
    A truncated or corrupt gzip stream raises ``DataFileError`` naming the file."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataFileError(f"{path}: corrupt or truncated gzip file ({e}); download it again") from None


def parse_idx(raw: bytes, path: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a numpy array of the shape in its header (native byte order).

    Checks: the first two bytes are zero, the type code is known, the header is complete, and
    the data holds exactly Π dims · itemsize bytes. Any failure raises ``DataFileError`` naming
    ``path`` and what was wrong.
    """
    if len(raw) < 4:
        raise DataFileError(f"{path}: {len(raw)} bytes is too short for an IDX file (4-byte magic number)")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in IDX_TYPES:
        raise DataFileError(f"{path}: not an IDX file: magic number 0x{raw[:4].hex()} should be "
                            f"0x0000TTDD with type TT in {{{', '.join(f'{c:02x}' for c in IDX_TYPES)}}}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, file has {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        what = "truncated" if len(raw) - header < expected else "has trailing bytes"
        raise DataFileError(f"{path}: {what}: header says shape {dims} of {dtype.name} = {expected} data "
                            f"bytes, file has {len(raw) - header}")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or not); with ``magic`` given (2051 for MNIST images, 2049 for
    labels), refuse a file whose magic number differs."""
    raw = read_bytes(path)
    if magic is not None and raw[:4] != int(magic).to_bytes(4, "big"):
        found = int.from_bytes(raw[:4], "big")
        raise DataFileError(f"{path}: magic number 0x{raw[:4].hex()} ({found}), expected 0x{magic:08x} ({magic})")
    return parse_idx(raw, path)
