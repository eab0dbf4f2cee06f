"""Bytes of a web page to text, without turning a page with one stray byte into mojibake.

Evidence is weighed in this order:

1. a byte-order mark: it cannot be there by accident, so it beats everything (as in browsers);
2. the charset of the HTTP ``Content-Type`` header, then the page's ``<meta charset>`` or
   ``<meta http-equiv content="...; charset=...">`` (labels mapped as browsers map them: ``gb2312`` and
   ``gbk`` read as GB18030, ``iso-8859-1`` and ``ascii`` as windows-1252, ``shift_jis`` as cp932...);
3. UTF-8, the web's default;
4. detection by charset-normalizer, trusted only for the multi-byte CJK encodings (it often mistakes
   windows-1252 for other single-byte code pages); windows-1252 when nothing else fits.

A multi-byte encoding (declared, UTF-8 or detected) is taken when the body is *mostly* valid in it: a
few bad bytes become U+FFFD instead of sending the whole page to windows-1252. A single-byte charset
(ISO-8859-1, windows-1252, KOI8-R...) decodes any bytes, so it cannot be checked, and a header naming one
is often just a server default (Apache's ``AddDefaultCharset``) in front of a UTF-8 page: such a
declaration yields to a meta tag naming a multi-byte encoding that fits the body, and to a body that is
UTF-8 with non-ASCII text (valid multi-byte UTF-8 sequences practically never occur in legacy text).
When the body was cut at the byte cap (``truncated``), a character cut in half at the end is dropped.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

# Share of the non-ASCII characters that may be bad bytes for an encoding to still count as the page's.
MAX_BAD_SHARE = 0.2
# The meta tag is looked for in the first bytes only, as browsers do (their prescan reads 1024).
META_PRESCAN_BYTES = 4096
# Detection reads a sample: enough to be sure, bounded so a 3 MB page is not scanned whole.
DETECT_SAMPLE_BYTES = 200_000

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)
_BAD = re.compile("[\udc80-\udcff]")  # bytes the decoder could not read, kept by "surrogateescape"

# Labels Python does not know, and Python names read as browsers read them (WHATWG Encoding Standard).
_LABELS = {
    "windows-874": "cp874",
    "x-mac-cyrillic": "mac-cyrillic",
    "windows-31j": "cp932",
    "x-sjis": "cp932",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso8859-8",
}
_AS_BROWSERS_READ = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
}
_JAPANESE = (
    "cp932",
    "euc_jp",
    "iso2022_jp",
    "euc_jis_2004",
    "euc_jisx0213",
    "shift_jis_2004",
    "shift_jisx0213",
)
MULTI_BYTE = frozenset(
    {"utf-8", "utf-16", "utf-16-le", "utf-16-be", "gb18030", "big5hkscs", "cp949", *_JAPANESE}
)
SINGLE_BYTE = frozenset(
    {
        "cp866",
        "cp874",
        *(f"cp{n}" for n in range(1250, 1259)),
        *(f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)),
        "koi8-r",
        "koi8-u",
        "mac-roman",
        "mac-cyrillic",
    }
)
# Detection is trusted for these only; the Korean ones are left out, as legacy Western text often passes
# for them.
_DETECTABLE = frozenset({"gb18030", "big5hkscs", *_JAPANESE})


@dataclass(frozen=True)
class _Decoded:
    raw: str  # bad bytes are lone surrogates here
    bad: int
    good: int  # non-ASCII characters read correctly

    @property
    def fits(self) -> bool:
        """Mostly valid: the bad bytes are a small share of the non-ASCII text."""
        return self.bad <= MAX_BAD_SHARE * (self.good + self.bad)

    @property
    def text(self) -> str:
        return _BAD.sub("\ufffd", self.raw) if self.bad else self.raw


def decode(body: bytes, declared: str | None = None, *, truncated: bool = False) -> str:
    """Bytes to text; ``declared`` is the HTTP header's charset, ``truncated`` says the body was cut."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return _decode(body[len(bom) :], encoding, truncated).text
    attempts: dict[str, _Decoded] = {}

    def attempt(encoding: str) -> _Decoded:
        if encoding not in attempts:
            attempts[encoding] = _decode(body, encoding, truncated)
        return attempts[encoding]

    meta = _META_CHARSET.search(body[:META_PRESCAN_BYTES])
    declarations = [
        canonical(declared),
        canonical(meta.group(1).decode("ascii", "ignore"), in_meta=True) if meta else None,
    ]
    weak: str | None = None  # a declared single-byte charset: the fallback when nothing better fits
    for name in declarations:
        if name in SINGLE_BYTE:
            weak = weak or name
        elif name is not None and attempt(name).fits:
            return attempt(name).text
    utf8 = attempt("utf-8")
    if weak is not None:
        return utf8.text if utf8.good and utf8.fits else attempt(weak).text
    if utf8.fits:
        return utf8.text
    return attempt(_detect(body, truncated) or "cp1252").text


def canonical(label: str | None, *, in_meta: bool = False) -> str | None:
    """The Python codec for a charset label as browsers read it, or None for an unknown or unsafe one."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(_LABELS.get(label, label)).name
    except LookupError:
        return None
    name = _AS_BROWSERS_READ.get(name, name)
    if in_meta and name.startswith("utf-16"):
        return "utf-8"  # a meta tag was readable as ASCII, so the page cannot be UTF-16
    return name if name in MULTI_BYTE or name in SINGLE_BYTE else None  # never utf-7, rot13, base64...


def _decode(body: bytes, encoding: str, truncated: bool) -> _Decoded:
    # An incremental decoder keeps back an incomplete character at the end; for a cut body it is dropped.
    decoder = codecs.getincrementaldecoder(encoding)("surrogateescape")
    raw = decoder.decode(body, final=not truncated)
    bad = len(_BAD.findall(raw)) if not raw.isascii() else 0
    good = len(raw) - len(raw.encode("ascii", "ignore")) - bad
    return _Decoded(raw, bad, good)


def _detect(body: bytes, truncated: bool) -> str | None:
    """A CJK encoding charset-normalizer finds in the body, even with a few bad bytes; else None."""
    sample = body[:DETECT_SAMPLE_BYTES]
    if truncated or len(sample) < len(body):
        sample = _whole_characters(sample)
    best = from_bytes(sample).best()
    if best is not None:
        encoding = canonical(best.encoding)
        if encoding in _DETECTABLE and _decode(sample, encoding, True).fits:
            return encoding
        return None
    # Nothing read the sample without an error: a CJK page with stray bytes, or cut inside a character
    # with no ASCII byte near the end. Judge each candidate on the sample without the bytes it cannot
    # read, so one stray byte does not hide the page's encoding.
    for encoding in ("gb18030", "cp932", "big5hkscs"):
        attempt = _decode(sample, encoding, True)
        if attempt.good and attempt.fits:
            cleaned = _BAD.sub("", attempt.raw).encode(encoding, "replace")
            if from_bytes(cleaned, cp_isolation=[encoding]).best() is not None:
                return encoding
    return None


def _whole_characters(sample: bytes) -> bytes:
    """The sample up to its last byte below 0x80, which ends a character in UTF-8 and the CJK encodings."""
    for end in range(len(sample) - 1, max(len(sample) - 4096, 0) - 1, -1):
        if sample[end] < 0x80:
            return sample[: end + 1]
    return sample
