"""What an uploaded file really is, found out by real parsers before anything is stored: a PDF is
read by pypdf, within limits of pages, objects and inflated size, and refused with active content
(scripts, launch actions, embedded files) or bytes after its end; a JPEG or PNG is decoded by
Pillow, within a limit of pixels, and re-encoded, so that what is stored is the picture only (a
payload after the image's end, metadata such as EXIF locations, are not carried over). Anything
else, or anything the parsers cannot read, is ``UnsupportedMedia`` with the reason.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from PIL import Image, ImageOps
from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError, PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, StreamObject

from ..domain.errors import UnsupportedMedia
from ..domain.model import sniff_content_type

MAX_PDF_PAGES = 20
MAX_PDF_INFLATED_BYTES = 50 * 1024 * 1024  # all the PDF's streams decoded
MAX_PDF_OBJECTS = 20_000
MAX_IMAGE_PIXELS = 40_000_000

# pypdf's own caps on one stream (its defaults are 75 MB), so that a bomb stops at our limit;
# applied around each reading (a context variable: other threads keep theirs)
PDF_LIMITS = {
    name: MAX_PDF_INFLATED_BYTES
    for name in (
        "maximum_declared_stream_length",
        "array_based_stream_maximum_output_length",
        "jbig2_maximum_output_length",
        "lzw_maximum_output_length",
        "run_length_maximum_output_length",
        "zlib_maximum_output_length",
        "brotli_maximum_output_length",
    )
}
# pypdf reports what it repairs through logging: a customer's file is not an event of ours
logging.getLogger("pypdf").setLevel(logging.ERROR)

# names that only active content uses (scripts, launching programs, files carried inside, forms
# that run code): an identity document or a registration certificate has none
ACTIVE_KEYS = frozenset(
    {"/JS", "/JavaScript", "/Launch", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia", "/XFA"}
)
ACTIVE_VALUES = frozenset({"/JavaScript", "/Launch", "/EmbeddedFile", "/RichMedia"})
_AFTER_END = re.compile(rb"%%EOF[\x00\t\n\f\r ]*\Z")


@dataclass(frozen=True)
class CheckedDocument:
    content_type: str
    data: bytes  # what is stored: the PDF as sent, an image as re-encoded


def check_document(data: bytes) -> CheckedDocument:
    """The file's type (by its content, never its name) and the bytes to store;
    UnsupportedMedia, saying why, for anything that is not a sound PDF, JPEG or PNG."""
    content_type = sniff_content_type(data[:16])
    if content_type == "application/pdf":
        check_pdf(data)
        return CheckedDocument(content_type, data)
    if content_type in IMAGE_FORMATS:
        return CheckedDocument(content_type, reencode_image(data, content_type))
    raise UnsupportedMedia()


# PDF ------------------------------------------------------------------------------------------


def check_pdf(data: bytes) -> None:
    if not _AFTER_END.search(data[-1024:]):
        raise UnsupportedMedia(
            "this PDF is not complete, or carries data after its end: it cannot be taken"
        )
    try:
        with apply_configuration(**PDF_LIMITS):
            _read_pdf(data)
    except UnsupportedMedia:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError):
        # pypdf's refusals, and what a malformed file makes its parser raise
        raise UnsupportedMedia("this PDF cannot be read") from None


def _read_pdf(data: bytes) -> None:
    reader = PdfReader(io.BytesIO(data), strict=False)
    pages = len(reader.pages)
    if pages == 0:
        raise UnsupportedMedia("this PDF has no page")
    if pages > MAX_PDF_PAGES:
        raise UnsupportedMedia(
            f"this PDF has {pages} pages: a document is at most {MAX_PDF_PAGES} pages"
        )
    _check_objects(reader)


def _object_numbers(reader: PdfReader) -> list[int]:
    numbers = {n for by_number in reader.xref.values() for n in by_number}
    numbers.update(reader.xref_objStm)
    numbers.discard(0)
    if len(numbers) > MAX_PDF_OBJECTS:
        raise UnsupportedMedia(f"this PDF has more than {MAX_PDF_OBJECTS} objects")
    return sorted(numbers)


def _check_objects(reader: PdfReader) -> None:
    """Every object once: no active content, and all streams together inflate to at most
    MAX_PDF_INFLATED_BYTES (one stream beyond it is stopped by pypdf's caps, set above)."""
    inflated = 0
    for number in _object_numbers(reader):
        obj = reader.get_object(number)
        _refuse_active_content(obj)
        if isinstance(obj, StreamObject):
            try:
                inflated += len(obj.get_data())
            except LimitReachedError:
                inflated = MAX_PDF_INFLATED_BYTES + 1
            if inflated > MAX_PDF_INFLATED_BYTES:
                raise UnsupportedMedia(
                    "this PDF inflates to more than "
                    f"{MAX_PDF_INFLATED_BYTES // (1024 * 1024)} MB: it cannot be taken"
                )


def _refuse_active_content(obj, depth: int = 0) -> None:
    """``obj`` and the dictionaries and arrays written inside it (others are objects of their own,
    checked in their turn)."""
    if depth > 32:
        raise UnsupportedMedia("this PDF cannot be read")
    if isinstance(obj, DictionaryObject):
        if ACTIVE_KEYS & set(obj.keys()) or ACTIVE_VALUES & {
            v for v in obj.values() if isinstance(v, NameObject)
        }:
            raise UnsupportedMedia(
                "this PDF holds active content (a script, a launch action or an embedded file): "
                "it cannot be taken"
            )
        for value in obj.values():
            _refuse_active_content(value, depth + 1)
    elif isinstance(obj, ArrayObject):
        for value in obj:
            _refuse_active_content(value, depth + 1)


# images ---------------------------------------------------------------------------------------

IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
# the modes each format writes as they are; any other is converted first
_SAVED_AS_IS = {
    "JPEG": {"L", "RGB", "CMYK"},
    "PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"},
}


def reencode_image(data: bytes, content_type: str) -> bytes:
    image_format = IMAGE_FORMATS[content_type]
    too_large = (
        f"this image has too many pixels: at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels "
        "are taken"
    )
    try:
        with Image.open(io.BytesIO(data), formats=[image_format]) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:  # read from the header, before decoding
                raise UnsupportedMedia(f"{too_large} (this one is {width}×{height})")
            image.load()
            picture = ImageOps.exif_transpose(image)  # turned as shown; EXIF is not written
        if picture.mode not in _SAVED_AS_IS[image_format]:
            has_alpha = "A" in picture.getbands() and image_format == "PNG"
            picture = picture.convert("RGBA" if has_alpha else "RGB")
        out = io.BytesIO()
        if image_format == "JPEG":
            picture.save(out, "JPEG", quality=90, optimize=True)
        else:
            picture.save(out, "PNG")
        return out.getvalue()
    except UnsupportedMedia:
        raise
    except Image.DecompressionBombError:
        raise UnsupportedMedia(too_large) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError):
        # Pillow's refusals of a file it cannot decode (truncated, corrupt, unknown inside)
        raise UnsupportedMedia(f"this {image_format} image cannot be read") from None
