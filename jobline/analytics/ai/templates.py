"""Error messages grouped into templates (the DLQ's root causes).

Drain-style log-template mining, hand-rolled rather than taken from ``drain3``: drain3 keeps its
state in a mutable prefix tree serialised as Python objects (never acceptable here: only JSON
is ever loaded), and the DLQ needs a pure, deterministic function of the rows it is given (the same
rows always give the same groups and group ids, so "retry this group" selects exactly the jobs the
page showed). The algorithm is the one Drain (He et al., ICWS 2017) describes:

1. mask the variable parts of a message (ids, numbers, addresses, quoted values, paths);
2. partition by (error type, token count, first token) — messages of one family share them;
3. inside a partition, join a message to the first cluster whose template agrees with it on at
   least ``SIMILARITY`` of the positions, replacing the positions that differ with ``<*>``.

Invariant: :func:`group` is order-independent in its output ordering (clusters are sorted by
size, then template) and deterministic for a given input order; ``group_id`` is a hash of the
error type and the final template, stable across calls over the same rows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

#: Share of token positions that must agree for a message to join a cluster (Drain's ``st``).
SIMILARITY = 0.5
WILDCARD = "<*>"
#: Only the first line of a message and its first tokens matter for its family (a traceback's
#: tail or a huge payload echo would only make every message unique).
MAX_CHARS = 500
MAX_TOKENS = 40

# Order matters: the specific shapes first, so a UUID is not masked as numbers and hex.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"https?://\S+"), "<URL>"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "<EMAIL>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
     "<UUID>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<IP>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<STR>"),
    (re.compile(r"(?<![\w/])(?:/[\w.-]+){2,}/?"), "<PATH>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"),
     "<HEX>"),
    (re.compile(r"[-+]?\b\d+(?:[.,]\d+)*(?:[a-zA-Z%]{1,3})?\b"), "<NUM>"),
)


def mask(message: str) -> list[str]:
    """The message's tokens with its variable parts masked."""
    text = (message or "").strip().splitlines()[0][:MAX_CHARS] if message and message.strip() \
        else ""
    for pattern, token in _MASKS:
        text = pattern.sub(token, text)
    return text.split()[:MAX_TOKENS]


T = TypeVar("T")


@dataclass
class Cluster(Generic[T]):
    error_type: str
    template: list[str]
    members: list[T] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.template)

    @property
    def group_id(self) -> str:
        digest = hashlib.sha256(f"{self.error_type}\x00{self.text}".encode()).hexdigest()
        return digest[:16]


def _similarity(template: Sequence[str], tokens: Sequence[str]) -> float:
    # As Drain: a wildcard position is a parameter, not evidence of similarity (counting it would
    # let a cluster that already has many wildcards absorb any message of its length).
    same = sum(1 for a, b in zip(template, tokens, strict=True) if a == b and a != WILDCARD)
    return same / len(tokens) if tokens else 1.0


def group(items: Iterable[T], key: Callable[[T], tuple[str | None, str]]) -> list[Cluster[T]]:
    """Cluster ``items`` by their (error type, message) as given by ``key``."""
    partitions: dict[tuple[str, int, str], list[Cluster[T]]] = {}
    for item in items:
        error_type, message = key(item)
        tokens = mask(message)
        etype = error_type or "unknown"
        part = partitions.setdefault((etype, len(tokens), tokens[0] if tokens else ""), [])
        for c in part:
            if _similarity(c.template, tokens) >= SIMILARITY:
                c.template = [a if a == b else WILDCARD for a, b in zip(c.template, tokens,
                                                                       strict=True)]
                c.members.append(item)
                break
        else:
            part.append(Cluster(etype, list(tokens), [item]))
    clusters = [c for part in partitions.values() for c in part]
    clusters.sort(key=lambda c: (-len(c.members), c.error_type, c.text))
    return clusters
