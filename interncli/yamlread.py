"""YAML documents read by libyaml when PyYAML has it, in a tenth of the time of PyYAML's
pure-Python parser (a millisecond and more for each config, token or tools file a command
reads). Only a document libyaml reads without any problem, nested no deeper than SHALLOW, is
taken from it: anything else the caller reads again as it always has, with the pure-Python
parser, so what an error says and where stays as it was (libyaml words its messages its own
way; and the pure parser recurses once per level, so a deep document may end in its
RecursionError, which the callers report, where libyaml would read it). Both build the data
with PyYAML's SafeConstructor and resolve scalars by the same rules, and place the nodes (the
lines problems are reported at) alike; the one difference found is where an empty value
after an explicit ``? key`` starts (libyaml: the next line). Two documents they read apart are
left to the pure parser too: one with a byte order mark past its start (libyaml drops one at
the start of any line, the pure parser keeps it in the text), and one with an empty scalar
tagged ``!`` (libyaml: "", the pure parser: None). libyaml does take a few documents the pure
parser refuses, as YAML allows them: a tab after a value or before a comment, a ``#`` right
after a block scalar's ``|`` or ``>``. :func:`load_document` is what the callers read with."""

from __future__ import annotations

from typing import IO, Any, Dict, List, Optional, Tuple, Union

import yaml  # this module is imported only where a file is read, never at start-up

# Levels of nesting taken from libyaml: far more than any file interncli reads holds (a spec
# is refused past 64), far fewer than the pure parser's recursion could fail on.
SHALLOW = 64


def read_fast(text: Union[str, bytes]) -> Optional[Tuple[Any, Any]]:
    """(the document's node tree, its data) as libyaml reads ``text`` with the safe loader, or
    None when PyYAML has no libyaml, the document has any problem or is nested deeper than
    SHALLOW (read it the usual way then)."""
    loader_class = getattr(yaml, "CSafeLoader", None)
    if loader_class is None or _late_bom(text):
        return None
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is not None and (not shallow(root) or _may_tag(text) and _empty_tagged(root)):
            return None
        return root, (loader.construct_document(root) if root is not None else None)
    except Exception:  # noqa: BLE001 -- whatever it is, the pure-Python parser reports it as before
        return None
    finally:
        loader.dispose()


def load_document(source: Union[str, bytes, IO[str]]) -> Tuple[Any, Any]:
    """(the node tree, the data) of the one YAML document in ``source``, a text or an open
    file: libyaml's reading when it is taken (read_fast), else the pure parser's, whose
    YAMLError or RecursionError (nesting too deep for it) the caller reports. A file is read
    again by the pure parser as a stream: its errors then name the file and quote no line of
    it (a snippet of the token file would be the token)."""
    text = source if isinstance(source, (str, bytes)) else source.read()
    fast = read_fast(text)
    if fast is not None:
        return fast
    if not isinstance(source, (str, bytes)):
        source.seek(0)
    loader = SafeLoader(source)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


class SafeLoader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, with a wrongly tagged scalar (``!!int x``, ``!!float``,
    ``!!bool x``, ``!!timestamp x``) a YAMLError at its line like any other problem: PyYAML's
    constructors let it out as a ValueError, IndexError, KeyError or AttributeError, which the
    callers took for a bug of interncli. The value is not quoted: it may be a token."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        """The value of ``node``, as PyYAML constructs it, or a ConstructorError."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, IndexError, KeyError, AttributeError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, "a value tagged {} that is not one".format(node.tag.replace("tag:yaml.org,2002:", "!!")),
                node.start_mark) from exc


def _late_bom(text: Union[str, bytes]) -> bool:
    # A UTF-16 text (told by its byte order mark) is not searched: it is rare, and left whole.
    if isinstance(text, bytes):
        return text[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\xef\xbb\xbf" in text[1:]
    return "\ufeff" in text[1:]


def _may_tag(text: Union[str, bytes]) -> bool:
    return b"!" in text if isinstance(text, bytes) else "!" in text


def _empty_tagged(root: Any) -> bool:
    """Whether a plain empty scalar resolved as a string is in the tree: only a tag makes it
    one (``!!str``, which both parsers read alike, or ``!``, which they do not)."""
    seen = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.value == "" and not node.style and node.tag == "tag:yaml.org,2002:str":
            return True
        stack += _children(node)
    return False


def shallow(root: Any) -> bool:
    """Whether no path down the node tree (aliases followed: a node may be shared, or hold
    itself) goes deeper than SHALLOW levels. Each node's height is worked out once, without
    recursion, so neither shared nodes nor depth cost more than the nodes there are."""
    height: Dict[int, int] = {}
    stack: List[Tuple[Any, bool]] = [(root, False)]
    open_nodes = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_nodes.discard(key)
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            if height[key] > SHALLOW:
                return False
            continue
        if key in height:
            continue
        if key in open_nodes:  # a node that holds itself: no depth is enough
            return False
        open_nodes.add(key)
        stack.append((node, True))
        stack += [(child, False) for child in children if id(child) not in height]
    return True


def _children(node: Any) -> List[Any]:
    value = node.value
    if isinstance(value, list):  # a sequence's items, or a mapping's (key, value) pairs
        return [part for item in value for part in (item if isinstance(item, tuple) else (item,))]
    return []
