"""Changing bytes of a signed or hashed text, to see each change refused."""

from __future__ import annotations

from hypothesis import strategies as st


def draw_byte_change(data: st.DataObject, text: bytes) -> bytes:
    """`text` with one byte, at a drawn position, replaced by another drawn value."""
    position = data.draw(st.integers(0, len(text) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != text[position]), label="byte")
    return text[:position] + bytes([byte]) + text[position + 1 :]


def flip_bit(text: bytes, position: int) -> bytes:
    """`text` with the lowest bit of byte `position` flipped."""
    return text[:position] + bytes([text[position] ^ 0x01]) + text[position + 1 :]
