"""Plain text: its encoding (UTF-8, BOMs, Windows-1252 before guessing)."""

from __future__ import annotations


def decode_text(data: bytes) -> str:
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" not in data:
        # Not UTF-8: Brazilian documents are then almost always Windows-1252/Latin-1,
        # and a statistical guess on a short text picks look-alike code pages
        # ("1º" read as Turkish "1ş"). cp1252 first; the detector for the rest.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    encoding = best.encoding if best is not None else "cp1252"
    return data.decode(encoding, errors="replace")
