"""Pytrees: nested tuples, lists, dicts, namedtuples, None and registered classes.

Like JAX: dict and defaultdict keys are flattened in sorted order, OrderedDict keeps insertion
order, None is an empty node with no leaves, and anything unregistered is a leaf.
"""
from __future__ import annotations

import collections
import dataclasses
import functools

from .errors import FjitTypeError, FjitValueError, PytreeKeyError, PytreeRecursionError

_registry: dict[type, tuple] = {}  # type -> (flatten(x) -> (children, aux), unflatten(aux, children))


def register_pytree_node(nodetype: type, flatten_func, unflatten_func):
    """Make `nodetype` a pytree node: flatten(x) -> (children, aux_data) and
    unflatten(aux_data, children) -> x.  aux_data must be hashable."""
    if nodetype in _registry:
        raise FjitValueError(f"{nodetype.__name__} is already registered as a pytree node")
    _registry[nodetype] = (flatten_func, unflatten_func)
    _node_cache.pop(nodetype, None)   # it may have been seen as a leaf before
    return nodetype


def register_pytree_node_class(cls):
    """Class decorator: `cls.tree_flatten(self)` and `cls.tree_unflatten(aux, children)`."""
    register_pytree_node(cls, lambda x: x.tree_flatten(), cls.tree_unflatten)
    return cls


def register_dataclass(cls=None, data_fields=None, meta_fields=None):
    """Register a dataclass: `data_fields` are children, `meta_fields` static (hashable) data.

    Used as a bare decorator, fields declared with `dataclasses.field(metadata={"static": True})`
    are meta fields and all others are data fields.
    """
    if cls is None:
        return functools.partial(register_dataclass, data_fields=data_fields,
                                 meta_fields=meta_fields)
    if data_fields is None and meta_fields is None:
        if not dataclasses.is_dataclass(cls):
            raise FjitTypeError(f"register_dataclass: {cls.__name__} is not a dataclass; pass "
                                "data_fields and meta_fields explicitly")
        fields = [f for f in dataclasses.fields(cls) if f.init]
        meta_fields = [f.name for f in fields if f.metadata.get("static", False)]
        data_fields = [f.name for f in fields if not f.metadata.get("static", False)]
    data_fields, meta_fields = tuple(data_fields or ()), tuple(meta_fields or ())

    def flatten(x):
        return ([getattr(x, n) for n in data_fields],
                tuple(getattr(x, n) for n in meta_fields))

    def unflatten(meta, children):
        kwargs = dict(zip(meta_fields, meta))
        kwargs.update(zip(data_fields, children))
        return cls(**kwargs)

    register_pytree_node(cls, flatten, unflatten)
    return cls


def _sorted_keys(d):
    """A dict's keys in sorted order (JAX's order); keys that cannot be compared (1 and 'a')
    are an error naming them, as in JAX."""
    try:
        return sorted(d)
    except TypeError:
        types = sorted({type(k).__name__ for k in d})
        raise PytreeKeyError(f"pytree: the keys of a {type(d).__name__} must be sortable "
                             f"(flattening sorts them), got keys {list(d)!r} of types "
                             f"{', '.join(types)}") from None


def _flatten_dict(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], tuple(keys)


def _flatten_ordered_dict(d):
    keys = tuple(d)
    return [d[k] for k in keys], keys


def _flatten_defaultdict(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], (d.default_factory, tuple(keys))


_registry[tuple] = (lambda t: (t, None), lambda _, c: tuple(c))
_registry[list] = (lambda t: (t, None), lambda _, c: list(c))
_registry[dict] = (_flatten_dict, lambda keys, c: dict(zip(keys, c)))
_registry[collections.OrderedDict] = (
    _flatten_ordered_dict, lambda keys, c: collections.OrderedDict(zip(keys, c)))
_registry[collections.defaultdict] = (
    _flatten_defaultdict,
    lambda aux, c: collections.defaultdict(aux[0], zip(aux[1], c)))
_registry[type(None)] = (lambda _: ((), None), lambda _, c: None)


_node_cache: dict = {}   # type -> (flatten, unflatten) or None (a leaf type)


def _node_of(x):
    """(flatten, unflatten) for a pytree node type, or None for a leaf.  A function of the
    type alone, so remembered per type."""
    cls = type(x)
    try:
        return _node_cache[cls]
    except KeyError:
        pass
    entry = _registry.get(cls)
    if entry is None and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        # namedtuple: children in field order
        entry = (lambda t: (tuple(t), None), lambda _, c, cls=cls: cls(*c))
    _node_cache[cls] = entry
    return entry


class PyTreeDef:
    """The structure of a pytree without its leaves; hashable, used in jit's cache key."""

    __slots__ = ("node_type", "node_data", "children", "num_leaves", "_hash", "interned")

    def __init__(self, node_type, node_data, children):
        self.node_type = node_type  # None marks a leaf
        self.node_data = node_data
        self.children = tuple(children)
        self.num_leaves = 1 if node_type is None else sum(c.num_leaves for c in self.children)
        self._hash = hash((node_type, node_data, self.children))
        self.interned = False

    @property
    def num_nodes(self):
        return 1 + sum(c.num_nodes for c in self.children)

    def unflatten(self, leaves):
        return tree_unflatten(self, leaves)

    def flatten_up_to(self, tree):
        """The subtrees of `tree` at this structure's leaves (`tree` must have it as a prefix)."""
        out = []
        self._flatten_up_to(tree, out)
        return out

    def _flatten_up_to(self, tree, out):
        if self.node_type is None:
            out.append(tree)
            return
        if _node_type_of(tree) != self.node_type:
            raise FjitValueError(f"pytree structure mismatch: expected a {self.node_type.__name__}"
                                 f", got {type(tree).__name__}: {tree!r}")
        children, data = _node_of(tree)[0](tree)
        if data != self.node_data or len(children) != len(self.children):
            raise FjitValueError(f"pytree structure mismatch: {self} vs {tree_structure(tree)}")
        for child_def, child in zip(self.children, children):
            child_def._flatten_up_to(child, out)

    def __eq__(self, other):
        if self is other:
            return True
        return (isinstance(other, PyTreeDef) and self._hash == other._hash
                and self.node_type == other.node_type and self.node_data == other.node_data
                and self.children == other.children)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"PyTreeDef({self._text()})"

    def _text(self):
        if self.node_type is None:
            return "*"
        kids = [c._text() for c in self.children]
        if self.node_type is tuple:
            return "(" + ", ".join(kids) + ("," if len(kids) == 1 else "") + ")"
        if self.node_type is list:
            return "[" + ", ".join(kids) + "]"
        if self.node_type is dict:
            return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(self.node_data, kids)) + "}"
        if self.node_type is type(None):
            return "None"
        return f"{self.node_type.__name__}[{self.node_data!r}]({', '.join(kids)})"


_LEAF = PyTreeDef(None, None, ())
_LEAF.interned = True


def _node_type_of(x):
    return type(x) if _node_of(x) is not None else None


def tree_flatten(tree, is_leaf=None):
    """(leaves, treedef) of a pytree."""
    leaves = []
    try:
        treedef = _flatten(tree, leaves, is_leaf)
    except RecursionError:
        raise _recursion_error(tree, is_leaf) from None
    return leaves, treedef


def _recursion_error(tree, is_leaf):
    """The error for a tree too deep to flatten: one that contains itself (named by the path
    to the repeated node) or one nested deeper than Python's recursion limit."""
    found = _find_cycle(tree, is_leaf)
    if found is not None:
        node, path = found
        return PytreeRecursionError(f"pytree: a {type(node).__name__} contains itself (it is "
                                    f"its own descendant at {keystr(path)}), so the tree has "
                                    "no finite list of leaves")
    return PytreeRecursionError("pytree: the tree is nested too deeply to flatten (deeper "
                                "than Python's recursion limit)")


def _find_cycle(tree, is_leaf):
    """(node, path from `tree`) of a node that is its own ancestor, or None (iterative: no
    recursion limit here)."""
    on_path = set()
    stack = [(tree, (), False)]
    while stack:
        node, path, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        if (is_leaf is not None and is_leaf(node)) or _node_of(node) is None:
            continue
        if id(node) in on_path:
            return node, path
        on_path.add(id(node))
        stack.append((node, path, True))
        children, _ = _node_of(node)[0](node)
        for k, child in reversed(list(enumerate(children))):
            key = (("key", list(node)[k]) if isinstance(node, dict) else ("index", k))
            stack.append((child, path + (key,), False))
    return None


def _flatten(tree, leaves, is_leaf):
    if is_leaf is not None and is_leaf(tree):
        leaves.append(tree)
        return _LEAF
    node = _node_of(tree)
    if node is None:
        leaves.append(tree)
        return _LEAF
    children, data = node[0](tree)
    defs = []
    for c in children:
        if is_leaf is None and _node_cache.get(type(c), _LEAF) is None:  # a known leaf type
            leaves.append(c)
            defs.append(_LEAF)
        else:
            defs.append(_flatten(c, leaves, is_leaf))
    return _treedef(type(tree), data, tuple(defs))


# Structures seen before, one PyTreeDef each: flattening the same kind of argument again
# (jit's cache key, every call) reuses it instead of building and hashing a new one, and
# equal structures are the same object, so comparing them is an identity check.  Keyed on
# the children's identities, which is sound because every child in a key is itself kept
# alive by this table (only trees made of interned parts are interned).  Only nodes whose
# data is None or string keys: other data could be equal without being the same (1 and
# True), and the shared PyTreeDef would carry the other one.
_interned: dict = {}
MAX_INTERNED = 4096


def _treedef(node_type, data, children):
    if data is not None and not (type(data) is tuple and
                                 all(type(k) is str for k in data)):
        return PyTreeDef(node_type, data, children)
    for c in children:
        if not c.interned:
            return PyTreeDef(node_type, data, children)
    key = (node_type, data, tuple(map(id, children)))
    found = _interned.get(key)
    if found is None:
        if len(_interned) >= MAX_INTERNED:
            _interned.clear()
        found = _interned[key] = PyTreeDef(node_type, data, children)
        found.interned = True
    return found


def treedef_tuple(treedefs) -> PyTreeDef:
    """The structure of a tuple whose elements have these structures (JAX's
    tree_util.treedef_tuple)."""
    return _treedef(tuple, None, tuple(treedefs))


def treedef_paths(treedef: PyTreeDef) -> list:
    """The path of each leaf of `treedef`: a tuple of keys -- ("key", k) for dict entries,
    ("attr", name) for namedtuple fields, ("index", i) for sequences and registered nodes."""
    if treedef.node_type is None:
        return [()]
    node, data = treedef.node_type, treedef.node_data
    if node in (dict, collections.OrderedDict):
        keys = [("key", k) for k in data]
    elif node is collections.defaultdict:
        keys = [("key", k) for k in data[1]]
    elif issubclass(node, tuple) and hasattr(node, "_fields"):
        keys = [("attr", f) for f in node._fields]
    else:
        keys = [("index", i) for i in range(len(treedef.children))]
    return [(key,) + rest for key, child in zip(keys, treedef.children)
            for rest in treedef_paths(child)]


def tree_leaves_with_path(tree, is_leaf=None):
    """[(path, leaf)] (see treedef_paths); `keystr(path)` prints a path like
    `['params'][0].weight`, for error messages that name a leaf."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    return list(zip(treedef_paths(treedef), leaves))


def tree_flatten_with_path(tree, is_leaf=None):
    leaves, treedef = tree_flatten(tree, is_leaf)
    return list(zip(treedef_paths(treedef), leaves)), treedef


def keystr(path) -> str:
    """A path as text: `['a'][0].b` ('' for the root)."""
    return "".join(f".{key}" if kind == "attr" else f"[{key!r}]" for kind, key in path)


def tree_unflatten(treedef: PyTreeDef, leaves):
    leaves = iter(leaves)
    out = _unflatten(treedef, leaves)
    if next(leaves, _SENTINEL) is not _SENTINEL:
        raise FjitValueError(f"tree_unflatten: too many leaves for {treedef}")
    return out


_SENTINEL = object()


def _unflatten(treedef, leaves):
    if treedef.node_type is None:
        leaf = next(leaves, _SENTINEL)
        if leaf is _SENTINEL:
            raise FjitValueError("tree_unflatten: too few leaves for the tree structure")
        return leaf
    children = [_unflatten(c, leaves) for c in treedef.children]
    unflatten = _registry.get(treedef.node_type)
    if unflatten is None:  # namedtuple
        return treedef.node_type(*children)
    return unflatten[1](treedef.node_data, children)


def tree_leaves(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f, tree, *rest, is_leaf=None):
    """Apply `f` leaf-wise; `rest` are trees with `tree`'s structure (or with it as a prefix)."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = [treedef.flatten_up_to(r) for r in rest]
    return treedef.unflatten([f(*xs) for xs in zip(leaves, *others)])


def tree_reduce(function, tree, initializer=_SENTINEL, is_leaf=None):
    leaves = tree_leaves(tree, is_leaf)
    if initializer is _SENTINEL:
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


def tree_all(tree):
    return all(tree_leaves(tree))


def treedef_is_leaf(treedef: PyTreeDef) -> bool:
    return treedef.node_type is None


__all__ = ["PyTreeDef", "register_pytree_node", "register_pytree_node_class",
           "register_dataclass", "tree_flatten", "tree_unflatten", "tree_leaves",
           "tree_structure", "tree_map", "tree_reduce", "tree_all", "treedef_is_leaf",
           "treedef_tuple"]
