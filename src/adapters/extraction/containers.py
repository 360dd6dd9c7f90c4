"""ZIP containers (DOCX, XLSX, PPTX, ODT, ODS, ODP) checked before any parser opens
them: zip bombs refused by declared sizes and ratios before anything is inflated, then
XML parts that declare a DTD or entities (entity expansion, XXE) refused."""

from __future__ import annotations

import io
import re
import zipfile
import zlib

from domain.errors import CorruptDocument, UnsafeDocument

from .limits import ParseLimits


def check_zip_container(
    data: bytes, limits: ParseLimits, xml_parts: re.Pattern[str], label: str
) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CorruptDocument(f"the {label} is not a readable ZIP container: {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_entries:
            raise UnsafeDocument(
                f"the {label} holds {len(infos)} files; the limit is {limits.max_zip_entries}"
            )
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_unzipped_bytes:
            raise UnsafeDocument(
                f"the {label} declares {declared // (1 << 20)} MB uncompressed; the limit is "
                f"{limits.max_unzipped_bytes // (1 << 20)} MB (a zip bomb)"
            )
        for info in infos:
            if info.file_size > (1 << 20) and info.file_size > limits.max_zip_ratio * max(
                1, info.compress_size
            ):
                raise UnsafeDocument(
                    f"{info.filename} inflates {info.file_size // max(1, info.compress_size)}:1 "
                    "(a zip bomb)"
                )
        for info in infos:
            if not xml_parts.match(info.filename):
                continue
            try:
                with zf.open(info) as part:
                    body = part.read(info.file_size + 1)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise CorruptDocument(f"{info.filename} is damaged: {exc}") from exc
            if len(body) > info.file_size:
                raise UnsafeDocument(f"{info.filename} is larger than its ZIP entry declares")
            if b"<!DOCTYPE" in body[:4096] or b"<!ENTITY" in body:
                raise UnsafeDocument(
                    f"{info.filename} declares a DTD or XML entities, which office suites "
                    "never write (entity expansion / XXE attempt)"
                )


def read_member(data: bytes, name: str, label: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.read(name)
    except KeyError as exc:
        raise CorruptDocument(f"the {label} has no {name}") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise CorruptDocument(f"the {label} cannot be read: {exc}") from exc
