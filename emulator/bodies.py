"""Message bodies as people really typed them, for generated scenarios and tests.

Skype's markup and entities, quotes, emoticons, URLs, text from every Unicode plane,
multi-line and space-padded text, very long bodies and hostile strings (HTML, script, SQL,
path fragments). Never a NUL: a D-Bus string cannot carry one, and neither could Skype's.
"""

from __future__ import annotations

import random

LONG_BODY_CHARS = 10_000

SAMPLES: tuple[str, ...] = (
    "hi",
    "ok",
    "same here",
    "see you tomorrow",
    "<b>bold</b> and <i>italic</i> and <s>struck</s>",
    "Tom &amp; Jerry &lt;3 &quot;cartoons&quot; &#39;n&#39; &apos;stuff&apos;",
    '<quote author="bob" timestamp="1357987875">the original</quote>\nmy answer',
    '<ss type="smile">:)</ss> (smile) (y) (coffee) :D ;) <3 (facepalm)',
    "https://example.com/a?b=1&c=2#frag and www.example.org/x_(y)",
    '<a href="https://example.com/?q=1&amp;r=2">link</a>',
    ' indented, "quotes" & <angle>\nsecond line',
    "trailing spaces   ",
    "windows line\r\nbreaks\r\n",
    "tab\tseparated\tvalues",
    "Grüße aus Köln — naïve café, ½ ≠ ¼",
    "中文消息，日本語のメッセージ、한국어 메시지",
    "עברית ומילים בערבית: مرحبا بالعالم",
    "emoji 😀🎉👍🏽 family 👨‍👩‍👧‍👦 flag 🏳️‍🌈 🇩🇪",
    "music 𝄞 math 𝔸𝕓𝕔 plane 1 𐍈",
    "plane 2 𠀀𠜎 plane 3 𰀀",
    "tags \U000e0067\U000e0062 variation \U000e0100 private \U000f0000\U00100000",
    "combining e\u0301 zero\u200bwidth bidi \u202eoverride\u202c",
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "'; DROP TABLE messages; --",
    "../../etc/passwd and C:\\Windows\\system32\\ and /dev/null",
    "{{7*7}} ${HOME} %s %n $(rm -rf /) `id`",
    "]]><!-- --><![CDATA[x]]>",
    "CHATMESSAGE 293 STATUS RECEIVED",
    "#7 ERROR 68",
    "/me waves",
    "   ",
    "line one\nline two\n\nline four",
)


def sample_body(rng: random.Random) -> str:
    """One body: mostly from SAMPLES, sometimes a mix, now and then 10,000 characters."""
    roll = rng.random()
    if roll < 0.002:
        return long_body(rng)
    if roll < 0.15:
        return " ".join(rng.choice(SAMPLES) for _ in range(rng.randint(2, 4)))
    return rng.choice(SAMPLES)


def long_body(rng: random.Random) -> str:
    pieces: list[str] = []
    size = 0
    while size < LONG_BODY_CHARS:
        piece = rng.choice(SAMPLES)
        pieces.append(piece)
        size += len(piece) + 1
    return " ".join(pieces)[:LONG_BODY_CHARS]
