"""Packing of narrow integers into bus/BRAM words (the golden model of every wide-word port).

``floor(word_bits / bits)`` elements per word; element ``i`` occupies bits
``[i*bits, (i+1)*bits)`` (element 0 in the LSBs); signed values are stored in two's
complement; unused top bits are zero. A trailing partial word is padded with zeros.
Words are returned as Python-int-safe ``uint64`` arrays for 64-bit words, or as lists of
Python ints for wider words.
"""

from __future__ import annotations

import functools

import numpy as np

from codesign.quant.dyadic import check_bits, qrange


def elems_per_word(bits: int, word_bits: int = 64) -> int:
    """Elements per word: ``floor(word_bits / bits)``."""
    return word_bits // check_bits(bits)


def check_range(values: np.ndarray, bits: int, signed: bool) -> None:
    """Raise ValueError when a value does not fit ``bits`` (two's complement when ``signed``)."""
    values = np.asarray(values)
    lo, hi = qrange(bits, signed)
    if values.size and (values.min() < lo or values.max() > hi):
        raise ValueError(f"values outside the {'signed' if signed else 'unsigned'} {bits}-bit range [{lo}, {hi}]")


def pack_words(values: np.ndarray, bits: int, signed: bool, word_bits: int = 64) -> list[int]:
    """Pack a 1-D integer array into words (Python ints, any ``word_bits``)."""
    vals = np.asarray(values, dtype=np.int64).ravel()
    check_range(vals, bits, signed)
    per = elems_per_word(bits, word_bits)
    mask = (1 << bits) - 1
    words = []
    for start in range(0, len(vals), per):
        word = 0
        for i, v in enumerate(vals[start:start + per]):
            word |= (int(v) & mask) << (i * bits)
        words.append(word)
    return words


def unpack_words(words: list[int] | np.ndarray, bits: int, signed: bool, count: int, word_bits: int = 64) -> np.ndarray:
    """Inverse of :func:`pack_words`: the first ``count`` elements as int64."""
    per = elems_per_word(bits, word_bits)
    mask = (1 << bits) - 1
    out = np.zeros(count, dtype=np.int64)
    for idx in range(count):
        word = int(words[idx // per])
        v = (word >> ((idx % per) * bits)) & mask
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out[idx] = v
    return out


def to_codes(values: np.ndarray, bits: int) -> np.ndarray:
    """Values of at most 8 bits as their ``bits``-wide two's-complement codes in ``uint8`` (no range check)."""
    return (np.asarray(values) & ((1 << check_bits(bits)) - 1)).astype(np.uint8)


def pack_codes64(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack ``uint8`` codes (already masked to ``bits``, see :func:`to_codes`) into 64-bit words.

    The layout of :func:`pack64`. Widths that divide 8 pack whole bytes and view them as
    little-endian words; the others shift one element column of the words at a time.
    """
    u = np.ascontiguousarray(codes, dtype=np.uint8).ravel()
    per = elems_per_word(bits)
    n_words = -(-u.size // per)
    if u.size != n_words * per:  # zero-pad the last word
        u = np.concatenate([u, np.zeros(n_words * per - u.size, np.uint8)])
    if 8 % bits == 0:
        per_byte = 8 // bits
        if per_byte > 1:
            grid = u.reshape(-1, per_byte)
            u = grid[:, 0].copy()
            for i in range(1, per_byte):
                u |= grid[:, i] << np.uint8(i * bits)
        return u.view(np.dtype("<u8")).astype(np.uint64, copy=False)
    lanes = u.reshape(n_words, per)
    out = lanes[:, 0].astype(np.uint64)
    for i in range(1, per):
        out |= lanes[:, i].astype(np.uint64) << np.uint64(i * bits)
    return out


def pack64(values: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Pack into a ``uint64`` array of 64-bit words (vectorised; the DMA buffer layout)."""
    vals = np.asarray(values).ravel()
    check_range(vals, bits, signed)
    return pack_codes64(to_codes(vals, bits), bits)


@functools.cache
def _byte_fields(bits: int, signed: bool) -> np.ndarray:
    """``[256, 8 / bits]`` int64: the fields of every byte value, element 0 in the LSBs (sign-extended when ``signed``)."""
    per_byte = 8 // bits
    byte = np.arange(256, dtype=np.int16)[:, None]
    fields = (byte >> (np.arange(per_byte, dtype=np.int16) * bits)[None, :]) & ((1 << bits) - 1)
    if signed:
        half = 1 << (bits - 1)
        fields = (fields ^ half) - half
    return fields.astype(np.int64)


def unpack64(words: np.ndarray, bits: int, signed: bool, count: int) -> np.ndarray:
    """Inverse of :func:`pack64` (vectorised)."""
    check_bits(bits)
    w = np.ascontiguousarray(np.asarray(words, dtype=np.uint64).ravel())
    if 8 % bits == 0:  # the little-endian words' bytes, each looked up as its 8 / bits fields
        u = w.astype(np.dtype("<u8"), copy=False).view(np.uint8)
        return _byte_fields(bits, signed)[u].reshape(-1)[:count]
    per = elems_per_word(bits)
    shifts = (np.arange(per, dtype=np.uint64) * np.uint64(bits))[None, :]
    vals = ((w.reshape(-1, 1) >> shifts) & np.uint64((1 << bits) - 1)).astype(np.int64).ravel()[:count]
    if signed:
        half = 1 << (bits - 1)
        vals = (vals ^ half) - half  # sign extension of a bits-wide field
    return vals


def join_lanes(values: np.ndarray | list[int], width: int) -> int:
    """Concatenate lane values (lane 0 in the LSBs) of ``width`` bits each into one integer."""
    out = 0
    mask = (1 << width) - 1
    for i, v in enumerate(np.asarray(values, dtype=np.int64).ravel()):
        out |= (int(v) & mask) << (i * width)
    return out


def split_lanes(value: int, width: int, count: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`join_lanes` (64-bit unsigned lanes come back as int64 bit patterns)."""
    mask = (1 << width) - 1
    out = np.zeros(count, dtype=np.int64)
    for i in range(count):
        v = (int(value) >> (i * width)) & mask
        if (signed or width == 64) and v >> (width - 1):
            v -= 1 << width
        out[i] = v
    return out
