"""``Content-Disposition`` for delivered objects.

The filename is always sanitised (``rindle.upload.filenames.sanitize_filename``), so the
quoted ``filename=`` form can never carry quotes, separators or control characters; the
RFC 5987 ``filename*`` form is added for clients that prefer it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from rindle.upload.filenames import sanitize_filename

__all__ = ["Disposition", "content_disposition", "normalize_disposition", "parse_disposition",
           "rfc5987"]

# RFC 5987 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" /
# "`" / "|" / "~". Every other UTF-8 byte is percent-encoded with uppercase hex.
_ATTR_CHARS = frozenset(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$&+-.^_`|~"
)
_INLINE_DEFAULT_NAME = "download"


@dataclass(frozen=True)
class Disposition:
    """A normalised disposition: ``type`` is ``attachment`` or ``inline``."""

    type: str
    filename: str
    filename_star: str

    def header(self) -> str:
        """The header value: ``<type>; filename="<filename>"; filename*=<filename_star>``."""
        return f'{self.type}; filename="{self.filename}"; filename*={self.filename_star}'


def rfc5987(text: str) -> str:
    """Percent-encode ``text`` as UTF-8 for an RFC 5987 ext-value (without the charset)."""
    return "".join(chr(b) if b in _ATTR_CHARS else f"%{b:02X}" for b in text.encode("utf-8"))


def normalize_disposition(key: str, *, disposition: str | None = None,
                          filename: str | None = None) -> Disposition | None:
    """Normalise a caller's disposition options for the object at ``key``.

    Returns ``None`` unless ``disposition`` or ``filename`` is given. The type is
    ``attachment`` when ``disposition`` says so (case-insensitive), ``inline`` otherwise. The
    filename is the sanitised ``filename`` if given, else the sanitised basename of ``key``
    for attachments, else ``"download"``.
    """
    if disposition is None and filename is None:
        return None
    kind = "attachment" if (disposition or "").strip().lower() == "attachment" else "inline"
    if filename is not None:
        name = sanitize_filename(filename)
    elif kind == "attachment":
        name = sanitize_filename(key.rsplit("/", 1)[-1])
    else:
        name = _INLINE_DEFAULT_NAME
    return Disposition(type=kind, filename=name, filename_star="UTF-8''" + rfc5987(name))


def content_disposition(key: str, *, disposition: str | None = None,
                        filename: str | None = None) -> str | None:
    """The ``Content-Disposition`` header value for ``key``, or ``None`` when none was asked.

    Example: ``content_disposition("a/b.mp4", disposition="attachment",
    filename="../my resume?.mp4")`` is
    ``attachment; filename="my_resume_.mp4"; filename*=UTF-8''my_resume_.mp4``.
    """
    normal = normalize_disposition(key, disposition=disposition, filename=filename)
    return None if normal is None else normal.header()


_PARAM = re.compile(r';\s*(filename\*?)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.IGNORECASE)


def parse_disposition(value: str) -> tuple[str, str | None]:
    """Split a ``Content-Disposition`` value into its type and filename (or None).

    Only what :func:`content_disposition` needs to rebuild the header safely: the type
    (``attachment`` or ``inline``; anything else counts as ``inline``) and the filename,
    from ``filename*`` (RFC 5987, percent-decoded) in preference to ``filename``. Every
    other parameter is dropped. Never raises.
    """
    kind = value.split(";", 1)[0].strip().lower()
    kind = "attachment" if kind == "attachment" else "inline"
    found: dict[str, str] = {}
    for name, raw in _PARAM.findall(value):
        text = raw.strip()
        if text.startswith('"') and text.endswith('"') and len(text) >= 2:
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        found.setdefault(name.lower(), text)
    if "filename*" in found:
        _, _, encoded = found["filename*"].partition("''")
        return kind, unquote(encoded or found["filename*"], errors="replace")
    return kind, found.get("filename")
