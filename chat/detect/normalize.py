"""Fold a chat message into a canonical form that the matchers can read.

People who want to move a buyer off the platform write around filters:
full-width digits (１３８), circled ones (①③⑧), Chinese numerals (一三八,
壹叁捌, 幺 for one), traditional characters (轉賬 → 转账, 支付寶 → 支付宝),
Cyrillic or Greek look-alikes in Latin words (wеchat with a Cyrillic е), and
capitals. Every original character is folded to zero or more characters here,
and each output character remembers the index of the character it came from,
so a finding in folded text maps back to a span the hub can mask.

Folding is one dictionary lookup per character: a table built once at import
(Chinese numerals, homoglyphs, the traditional→simplified character table of
OpenCC) plus a memo of ``unicodedata`` NFKC results for everything else. That
keeps the cost per message a few microseconds, where running OpenCC's phrase
converter or a numeral parser per message would cost tens.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources

# Digit-by-digit numerals as people spell phone numbers: lower and upper (financial)
# forms, simplified and traditional, and the spoken 幺 for one. Positional words
# (十, 百, 千) are left alone: nobody spells a phone number with them.
_NUMERALS = {
    "〇": "0", "零": "0", "洞": "0",
    "一": "1", "壹": "1", "幺": "1", "么": "1",
    "二": "2", "贰": "2", "貳": "2", "两": "2", "兩": "2",
    "三": "3", "叁": "3", "參": "3", "叄": "3",
    "四": "4", "肆": "4",
    "五": "5", "伍": "5",
    "六": "6", "陆": "6", "陸": "6",
    "七": "7", "柒": "7",
    "八": "8", "捌": "8",
    "九": "9", "玖": "9",
}
"""Chinese numerals folded to ASCII digits. 洞 (zero in radio speech) and 么 (a
common typo of 幺) are included because they only matter between other digits:
a lone 洞 or 两 makes a one-digit run, which no matcher looks at."""

# Latin look-alikes from Cyrillic and Greek, and symbols used for letters.
_HOMOGLYPHS = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԛ": "q", "ԝ": "w",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "ⅴ": "v", "ⅹ": "x", "√": "v", "✔": "v", "✓": "v",
    "➕": "+", "＋": "+", "✚": "+",
}
"""Look-alikes of the letters and signs the invitation patterns use ("➕v", "√x")."""

# Dingbat circled digits have no NFKC decomposition (U+2460 ① has one).
_DINGBATS = {chr(0x2780 + i): str((i + 1) % 10) for i in range(10)}
_DINGBATS.update({chr(0x278A + i): str((i + 1) % 10) for i in range(10)})
_DINGBATS.update({chr(0x2776 + i): str((i + 1) % 10) for i in range(10)})
_DINGBATS["⓪"] = "0"
_DINGBATS["⓿"] = "0"

_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}


def _traditional() -> dict[str, str]:
    """OpenCC's traditional → simplified character table (first choice for each)."""
    table: dict[str, str] = {}
    path = resources.files("opencc").joinpath("dictionary", "TSCharacters.txt")
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, values = line.partition("\t")
        value = values.split(" ", 1)[0]
        if len(key) == 1 and len(value) == 1:
            table[key] = value
    return table


def _build() -> dict[str, str]:
    table = _traditional()
    table.update(_DINGBATS)
    table.update(_HOMOGLYPHS)
    table.update(_NUMERALS)
    for ch in _INVISIBLE:
        table[ch] = ""
    for code in range(0x21, 0x7F):  # ASCII: only capitals change
        ch = chr(code)
        table[ch] = ch.lower()
    return table


_TABLE = _build()
_NUMERAL_TABLE = str.maketrans(_NUMERALS)


def fold_pattern(pattern: str) -> str:
    """A regular expression written with Chinese words, in folded form: its
    numerals become digits as they do in the text ("二维码" is read as "2维码")."""
    return pattern.translate(_NUMERAL_TABLE)


def _fold_char(ch: str) -> str:
    """NFKC, lower case and decimal digits of any script, then the table again
    (NFKC turns ＷＸ into WX and 寶 stays 寶 until the table maps it)."""
    out = []
    for c in unicodedata.normalize("NFKC", ch).lower():
        if c.isdecimal() and not c.isascii():
            out.append(str(unicodedata.decimal(c)))
        else:
            out.append(_TABLE.get(c, c))
    return "".join(out)


_RANGES = ((0, 0x3400), (0xA000, 0xAC00), (0xD7A4, 0xD800), (0xE000, 0x10000), (0x1D400, 0x1D800), (0x1F100, 0x1F200))
"""Where NFKC or case folding changes characters: the BMP without the CJK
ideographs and Hangul syllables (unchanged, bar the traditional ones already in
the table), plus mathematical (𝟏𝟑𝟖) and enclosed (🄂) alphanumerics."""


def _translation() -> tuple[dict[int, str], re.Pattern[str]]:
    """Every character that folding changes, and a pattern of those that do not
    fold to exactly one character (so the fast path can keep positions)."""
    table: dict[int, str] = {}
    irregular: list[str] = []
    for ch, out in _TABLE.items():
        if out != ch:
            table[ord(ch)] = out
            if len(out) != 1:
                irregular.append(ch)
    for code in itertools.chain(*(range(a, b) for a, b in _RANGES)):
        ch = chr(code)
        if ch in _TABLE:
            continue
        out = _fold_char(ch)
        if out != ch:
            table[code] = out
            if len(out) != 1:
                irregular.append(ch)
    pattern = re.compile("[" + "".join(re.escape(ch) for ch in irregular) + "]")
    return table, pattern


_TRANSLATION, _IRREGULAR = _translation()


@dataclass(frozen=True, slots=True)
class Folded:
    """Folded text and, for each of its characters, the index in the original
    (``None`` when folding kept every position, the common case)."""

    text: str
    origin: tuple[int, ...] | None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span behind folded ``[start, end)``."""
        origin = self.origin
        if origin is None:
            return start, end
        if start >= end:
            index = origin[start] if start < len(origin) else (origin[-1] + 1 if origin else 0)
            return index, index
        return origin[start], origin[end - 1] + 1


def fold(text: str) -> Folded:
    """Fold ``text`` (see the module's docstring): one ``str.translate`` when no
    character expands or vanishes, else character by character."""
    if _IRREGULAR.search(text) is None:
        return Folded(text.translate(_TRANSLATION), None)
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        out = _TRANSLATION.get(ord(ch), ch)
        chars.append(out)
        origin.extend([index] * len(out))
    return Folded("".join(chars), tuple(origin))
