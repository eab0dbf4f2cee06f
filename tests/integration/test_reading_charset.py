"""Decoding page bytes: declared, sniffed or detected charsets, stray bytes and bodies cut at the byte cap.

The fault matrix reads such pages end to end from a real server; these pin the rules of ``decode``.
"""

from __future__ import annotations

import pytest

from mindsearch.web.charset import canonical, decode

ZH = "北京是中华人民共和国的首都，也是全国的政治、文化中心。上海是中国最大的城市。" * 3
JA = "東京は日本の首都であり、世界最大の都市圏の一つです。ひらがなとカタカナ。" * 30
RU = "Москва - столица России, крупнейший по численности населения город страны."


def with_stray_byte(text: str, encoding: str) -> bytes:
    """The text encoded, with one byte no encoding here can read put between two characters."""
    half = len(text) // 2
    return text[:half].encode(encoding) + b"\xff" + text[half:].encode(encoding)


@pytest.mark.parametrize(
    ("body", "declared"),
    [
        (with_stray_byte(ZH, "utf-8"), None),
        (with_stray_byte(ZH, "utf-8"), "utf-8"),
        (with_stray_byte(ZH, "gbk"), None),
        (with_stray_byte(ZH, "gbk"), "gb2312"),
        (
            b'<meta http-equiv="Content-Type" content="text/html; charset=GBK">' + with_stray_byte(ZH, "gbk"),
            None,
        ),
    ],
    ids=["utf8-undeclared", "utf8-declared", "gbk-undeclared", "gbk-declared", "gbk-http-equiv"],
)
def test_a_stray_byte_is_one_replacement_character_not_a_windows_1252_page(
    body: bytes, declared: str | None
) -> None:
    text = decode(body, declared)
    half = len(ZH) // 2
    assert ZH[:half] in text and ZH[half:] in text
    assert text.count("\ufffd") == 1


def test_a_stray_byte_in_a_declared_shift_jis_page_keeps_the_rest() -> None:
    text = decode(with_stray_byte(JA, "shift_jis"), "shift_jis")
    assert JA[:40] in text and JA[-40:] in text


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030", "shift_jis", "big5"])
def test_a_character_cut_at_the_byte_cap_is_dropped(encoding: str) -> None:
    text = ZH if encoding != "shift_jis" else JA
    if encoding == "big5":
        text = "臺北是中華民國的首都，也是臺灣最大的都市。" * 10
    body = text.encode(encoding)
    cut = body[: len(body) - 1]  # the last character loses its last byte
    decoded = decode(cut, encoding, truncated=True)
    assert decoded == text[:-1]
    assert decode(cut, None, truncated=True) == text[:-1], "undeclared, detected"


def test_a_cut_utf8_page_is_not_detected_as_something_else() -> None:
    page = ("<html><body><p>" + ZH * 400 + "</p></body></html>").encode()
    cut = page[:100_000]
    assert page[100_000] & 0xC0 == 0x80, "the cut falls inside a character"
    text = decode(cut, None, truncated=True)
    assert text.startswith("<html><body><p>" + ZH) and "\ufffd" not in text


def test_a_byte_order_mark_beats_the_header() -> None:
    assert decode("\ufeffZürich 北京".encode(), "iso-8859-1") == "Zürich 北京"
    assert decode("Zürich".encode("utf-16"), None) == "Zürich"  # with its BOM


def test_a_latin1_header_in_front_of_utf8_is_a_server_default() -> None:
    """ISO-8859-1 decodes any bytes, so the header cannot be checked; valid UTF-8 text overrules it."""
    body = ("<p>Zürich " + ZH + "</p>").encode()
    assert decode(body, "iso-8859-1") == "<p>Zürich " + ZH + "</p>"
    assert decode(b'<meta charset="utf-8">' + body, "ISO-8859-1").endswith(ZH + "</p>")
    # a real Latin-1 page with that header stays Latin-1 (read as windows-1252, as browsers do)
    latin = "Café crème à Zürich \u201cquoted\u201d"  # curly quotes: windows-1252 bytes 0x93, 0x94
    assert decode(latin.encode("cp1252"), "iso-8859-1") == latin


def test_a_latin1_header_yields_to_a_meta_tag_naming_gbk() -> None:
    body = b"<meta charset=gbk>" + ZH.encode("gbk")
    assert decode(body, "iso-8859-1").endswith(ZH)


def test_declared_single_byte_charsets_other_than_latin1_are_kept() -> None:
    assert decode(RU.encode("cp1251"), "windows-1251") == RU
    assert decode(b"<meta charset=koi8-r>" + RU.encode("koi8-r"), None).endswith(RU)


def test_undeclared_legacy_western_text_is_windows_1252() -> None:
    german = (
        "Die Universität Zürich ist mit über 28.000 Studierenden die größte Universität der Schweiz. " * 5
    )
    assert decode(german.encode("cp1252"), None) == german
    assert decode(german.encode("cp1252"), "utf-8") == german, "a wrong UTF-8 header is overruled"


def test_undeclared_japanese_is_detected() -> None:
    assert decode(JA.encode("shift_jis"), None) == JA
    assert decode(JA.encode("euc_jp"), None) == JA


@pytest.mark.parametrize("label", ["utf-7", "base64", "rot13", "unicode_escape", "x-no-such-charset"])
def test_unsafe_or_unknown_labels_are_ignored(label: str) -> None:
    assert canonical(label) is None
    body = f'<meta charset="{label}"><p>+AGEAYgBj- aGVsbG8= caf\\u00e9</p>'.encode()
    assert decode(body, label) == body.decode("ascii")


def test_labels_are_read_as_browsers_read_them() -> None:
    assert canonical("GB2312") == canonical("gbk") == "gb18030"
    assert canonical("ISO-8859-1") == canonical("us-ascii") == "cp1252"
    assert canonical("Shift_JIS") == "cp932"
    assert canonical("utf-16", in_meta=True) == "utf-8"
