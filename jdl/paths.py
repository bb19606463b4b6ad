"""Path patterns over param trees: pick leaves or subtrees by their readable paths
('blocks/0_block/attn/q/w'), for freezing, differential learning rates, LoRA targets and
transfer learning (the course's "freeze the backbone, train the head").

A pattern is a glob over '/'-separated path strings, matched against the whole path:

    *    any run of characters inside one segment ('attn/*' matches 'attn/q', not 'attn/q/w')
    **   any run of whole segments, none included ('**/w' matches 'w' and 'blocks/0_block/attn/q/w')
    ?    one character inside a segment

or a compiled ``re.Pattern``, which must match the whole path (``re.fullmatch``). A pattern
that names an inner node ('blocks/0_block') selects every leaf below it.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Iterable, Union

import jax

from jdl.core import path_str

Pattern = Union[str, "re.Pattern[str]"]
Patterns = Union[Pattern, Iterable[Pattern]]


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> "re.Pattern[str]":
    """The regular expression of a path glob: ``**/`` → ``(?:.*/)?``, ``**`` → ``.*``, ``*`` →
    ``[^/]*``, ``?`` → ``[^/]``, everything else literal.

    >>> glob_regex('blocks/*/attn/*').pattern
    'blocks/[^/]*/attn/[^/]*'
    """
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def as_patterns(patterns: Patterns, where: str = "patterns") -> tuple:
    """One pattern or an iterable of them as a tuple; ``TypeError`` for anything else."""
    if isinstance(patterns, (str, re.Pattern)):
        return (patterns,)
    try:
        out = tuple(patterns)
    except TypeError:
        raise TypeError(f"{where}: expected a glob string, an re.Pattern or a list of them, "
                        f"got {type(patterns).__name__}") from None
    for p in out:
        if not isinstance(p, (str, re.Pattern)):
            raise TypeError(f"{where}: expected a glob string or an re.Pattern, got {p!r}")
    return out


def matches(path: str, patterns: Patterns) -> bool:
    """Whether the path string, or one of its ancestors ('a/b' for 'a/b/w'), matches a pattern.

    >>> matches('blocks/0_block/attn/q/w', 'blocks/*/attn/**')
    True
    >>> matches('head/w', ['blocks/**', 'wte'])
    False
    """
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    for p in as_patterns(patterns):
        regex = glob_regex(p) if isinstance(p, str) else p
        if any(regex.fullmatch(s) for s in prefixes):
            return True
    return False


def path_mask(tree: Any, patterns: Patterns) -> Any:
    """A tree of bools shaped like ``tree``: True at the leaves whose path (or an ancestor's)
    matches one of ``patterns``.

    >>> path_mask({'body': {'w': 1.0}, 'head': {'w': 2.0}}, 'head')
    {'body': {'w': False}, 'head': {'w': True}}
    """
    pats = as_patterns(patterns)
    return jax.tree_util.tree_map_with_path(lambda p, _: matches(path_str(p), pats), tree)


def leaf_paths(tree: Any) -> list[str]:
    """Every leaf's path string, in ``jax.tree`` order."""
    return [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
