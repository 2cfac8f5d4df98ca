"""Text from untrusted data made safe to show: titles, link names and authors come from
Wikipedia dumps and users' files, URLs may carry credentials.

- ``printable``: control characters (C0 incl. ESC, NUL, bare CR; DEL; C1 such as the 8-bit
  CSI; bidirectional overrides and line/paragraph separators) become visible escapes
  (``\\x1b``, ``\\r``, ``\\u202e``), so a title cannot move the cursor, recolour the terminal,
  set its title (OSC), hide text or reorder a line;
- ``json_safe``: the same characters as JSON ``\\u`` escapes inside an encoded JSON text: the
  decoded data stays exact, the bytes on a terminal stay inert;
- ``csv_cell``: the OWASP rule against formula injection for a spreadsheet;
- ``mask_secret`` / ``mask_url`` / ``mask_urls``: never show a key or a password whole.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

# C0 and DEL and C1; the bidi embeddings/overrides/isolates and the line/paragraph separators.
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
# what JSON itself leaves raw (it escapes U+0000-U+001F already)
_UNSAFE_IN_CSV = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
_JSON_RAW = re.compile(f"[\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_lines: bool = False) -> str:
    """``text`` with every control character written as a visible escape. ``keep_lines``
    keeps LF and TAB (for multi-line messages composed by bookvec itself)."""
    text = str(text)
    pattern = _UNSAFE_KEEP_LINES if keep_lines else _UNSAFE
    return pattern.sub(_escape, text) if pattern.search(text) else text


def json_safe(encoded: str) -> str:
    """An encoded JSON text with C1 controls, DEL and bidi controls as ``\\uXXXX`` escapes
    (they can only occur inside strings, where the escape decodes to the same character)."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group(0)):04x}", encoded)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """A text cell for CSV: one starting like a formula (=, +, -, @, tab, CR) gets a leading
    single quote (OWASP's rule); control characters other than tab, LF and CR (kept: the
    writer quotes the field) become escapes. Callers pass text only: numbers stay numbers,
    so -0.5 is not touched."""
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return _UNSAFE_IN_CSV.sub(_escape, value) if _UNSAFE_IN_CSV.search(value) else value


def mask_secret(secret: str | None) -> str | None:
    """A secret for display: never whole; the last 4 characters of a long one."""
    if not secret:
        return None
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


_SECRET_PARAMS = re.compile(r"(key|token|secret|password|passwd|pwd|auth|signature|sig)", re.I)


def mask_url(url: str | None) -> str | None:
    """A URL for display: the password of ``user:pass@host`` (or a token as the user name)
    as ``****``, the values of query parameters named like keys or tokens (``?api_key=...``)
    masked as ``mask_secret`` masks the API key."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user, sep, password = userinfo.partition(":")
            netloc = f"{user}:****@{host}" if sep else f"****@{host}"  # a password: none shown
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(_SECRET_PARAMS.search(name) for name, _ in pairs):
                query = "&".join(
                    f"{name}={_masked(value) if _SECRET_PARAMS.search(name) else value}"
                    for name, value in pairs
                )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # not a URL urllib can split (a bad port): mask what looks secret
        return _USERINFO.sub(r"\1****@", url)


def _masked(value: str) -> str:
    return value if value.startswith("****") else mask_secret(value) or ""  # masked once only


_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:)]")
_USERINFO = re.compile(r"(://[^/@\s:]*:)[^/@\s]*@")


def mask_urls(text: str) -> str:
    """Every URL inside a message masked with ``mask_url`` (an error from the HTTP client
    repeats the URL it was given, credentials and all)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)) or "", text)
