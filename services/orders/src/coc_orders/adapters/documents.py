"""What an uploaded file really is, found out by real parsers before anything is stored: a PDF is
read by pypdf, within limits of pages, objects and inflated size, and refused with active content
(scripts, launch actions, embedded files) or bytes after its end; a JPEG or PNG is decoded by
Pillow, within a limit of pixels, and re-encoded, so that what is stored is the picture only (a
payload after the image's end, metadata such as EXIF locations, are not carried over). Anything
else, or anything the parsers cannot read, is ``UnsupportedMedia`` with the reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from coc_shared.documents import DocumentRefused
from coc_shared.documents import check_pdf as check_pdf_content

from ..domain.errors import UnsupportedMedia
from ..domain.model import sniff_content_type

MAX_IMAGE_PIXELS = 40_000_000


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
    """The shared check of a PDF (coc_shared.documents.check_pdf), refused as UnsupportedMedia."""
    try:
        check_pdf_content(data)
    except DocumentRefused as exc:
        raise UnsupportedMedia(str(exc)) from None


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
