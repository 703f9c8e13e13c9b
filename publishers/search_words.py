"""The words inside what people paste: URLs, host names, paths, dotted names, `snake_case` and
`camelCase` identifiers, ticket keys such as `ABC-123`.

A body field's tokenizer keeps `example.com` or `fooBar` whole, so `example` or `bar` found
nothing. A *compound* is a run of letters and digits joined by URL and identifier punctuation,
or one run with a case or letter-digit change inside (`fooBar`, `HTTPServer`, `abc123`);
its *parts* are the runs split at those joins and changes, lower-cased:
`https://www.example.org/a_b?c=1` -> https www example org a b c 1.

The search index keeps the parts of every compound of two or more parts (a plain word adds
nothing: the body fields have it), and each pair of adjacent parts as one term ("example
org"): a compound in a query is found by its pairs, one short lookup each. Positions would
be exact for three parts or more (`a.b.c` is not `a.b` and `b.c` apart), but Whoosh's phrase
matcher reads them one document at a time (360 ms for `docs.example.com` in 50,000
messages) and checking the stored text of every candidate took 420 ms in 200,000, so such a
compound matches when all its pairs do. Lucene's WordDelimiterGraphFilter and CommonGrams
are the model. Pure: text in, parts out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise

from whoosh.analysis import Token, Tokenizer

# `[^\W_]` is a letter or digit (`\w` less the underscore, which is a join here).
_CONNECTORS = r"[._\-/:@?=&#+%~\\]"
COMPOUND = re.compile(
    rf"(?<![^\W_])(?:[^\W_]+(?:{_CONNECTORS}+[^\W_]+)+"
    r"|[^\W_]*?(?:[a-z][A-Z]|[A-Z][A-Z][a-z]|[^\W\d_]\d|\d[^\W\d_])[^\W_]*)"
)
# The parts of one letters-and-digits run: an upper-case run before a capitalised word
# (`HTTP` of `HTTPServer`), a (capitalised) lower-case word, digits, other letters.
_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_]+")
_RUN = re.compile(r"[^\W_]+")


def part_spans(compound: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each part of a compound, shifted by `offset`."""
    return [
        (offset + run.start() + part.start(), offset + run.start() + part.end())
        for run in _RUN.finditer(compound)
        for part in _PART.finditer(run.group())
    ]


def compounds(text: str) -> Iterator[tuple[int, list[tuple[int, int]]]]:
    """Each compound of two or more parts in `text`: (its start, its parts' spans)."""
    for match in COMPOUND.finditer(text):
        spans = part_spans(match.group(), match.start())
        if len(spans) > 1:
            yield match.start(), spans


def compound_parts(text: str) -> list[list[str]]:
    """The lower-cased parts of each compound in `text` (a query word)."""
    return [[text[a:b].lower() for a, b in spans] for _, spans in compounds(text)]


def without_compounds(text: str) -> str:
    """`text` with its compounds blanked out: what the body fields search as plain words."""
    for start, spans in reversed(list(compounds(text))):
        text = text[:start] + " " + text[spans[-1][1] :]
    return text


def pairs(parts: list[str]) -> list[str]:
    """The terms of adjacent parts ("example org")."""
    return [f"{a} {b}" for a, b in pairwise(parts)]


def indexed_parts(text: str) -> list[str]:
    """The `parts` terms of a body: each compound's parts, then their pairs (what
    PartsTokenizer yields when indexing, without its token objects)."""
    return [term for words in compound_parts(text) for term in (*words, *pairs(words))]


class PartsTokenizer(Tokenizer):
    """Whoosh tokens of the compounds' parts, lower-cased. When indexing (mode "index"), the
    pairs of adjacent parts follow each compound's parts (the field keeps no positions)."""

    def __call__(
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        tokenize=True,
        mode="",
        **kwargs,
    ):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        pos = start_pos
        indexing = mode == "index"
        for _, spans in compounds(value):
            words = []
            for start, end in spans:
                token.text = value[start:end].lower()
                words.append(token.text)
                token.boost = 1.0
                token.stopped = False
                if keeporiginal:
                    token.original = token.text
                if positions:
                    token.pos = pos
                if chars:
                    token.startchar = start_char + start
                    token.endchar = start_char + end
                pos += 1
                yield token
            if indexing:
                for pair in pairs(words):
                    token.text = pair
                    yield token
