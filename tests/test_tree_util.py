"""Pytrees: flatten/unflatten round trips, JAX's ordering rules, registration."""
import collections
import dataclasses

import pytest

from fjit import tree_util as tu


def test_flatten_order_and_roundtrip():
    tree = {"b": [1, (2, 3)], "a": 4, "c": None}
    leaves, treedef = tu.tree_flatten(tree)
    assert leaves == [4, 1, 2, 3]  # dict keys sorted, None has no leaves
    assert tu.tree_unflatten(treedef, leaves) == tree
    assert treedef.num_leaves == 4
    assert tu.tree_leaves(tree) == leaves


def test_none_is_an_empty_node():
    leaves, treedef = tu.tree_flatten([None, 1])
    assert leaves == [1]
    assert tu.tree_unflatten(treedef, [5]) == [None, 5]
    assert tu.tree_map(lambda x: x + 1, (None, 2)) == (None, 3)


def test_ordered_dict_keeps_order_defaultdict_sorts():
    od = collections.OrderedDict([("z", 1), ("a", 2)])
    assert tu.tree_leaves(od) == [1, 2]
    dd = collections.defaultdict(list, {"z": 1, "a": 2})
    assert tu.tree_leaves(dd) == [2, 1]
    back = tu.tree_unflatten(tu.tree_structure(dd), [3, 4])
    assert isinstance(back, collections.defaultdict) and back == {"a": 3, "z": 4}


def test_namedtuple():
    Point = collections.namedtuple("Point", "x y")
    leaves, treedef = tu.tree_flatten(Point(1, [2, 3]))
    assert leaves == [1, 2, 3]
    assert tu.tree_unflatten(treedef, [4, 5, 6]) == Point(4, [5, 6])


def test_tree_map_multiple_trees_and_prefix():
    a = {"x": 1, "y": (2, 3)}
    b = {"x": 10, "y": (20, 30)}
    assert tu.tree_map(lambda u, v: u + v, a, b) == {"x": 11, "y": (22, 33)}
    # the first tree may be a prefix of the others: its leaves meet whole subtrees
    assert tu.tree_map(lambda u, v: (u, v), [1, 2], [[3, 4], 5]) == [(1, [3, 4]), (2, 5)]
    with pytest.raises(ValueError, match="mismatch"):
        tu.tree_map(lambda u, v: u, {"x": 1}, {"z": 1})


def test_treedef_equality_and_hash():
    t1 = tu.tree_structure({"a": [1, 2], "b": 3})
    t2 = tu.tree_structure({"b": 9, "a": [7, 8]})
    t3 = tu.tree_structure({"a": (1, 2), "b": 3})
    assert t1 == t2 and hash(t1) == hash(t2)
    assert t1 != t3
    assert "PyTreeDef" in repr(t1)


def test_register_pytree_node():
    class Box:
        def __init__(self, value, label):
            self.value, self.label = value, label

    tu.register_pytree_node(Box, lambda b: ([b.value], b.label),
                            lambda label, children: Box(children[0], label))
    leaves, treedef = tu.tree_flatten([Box(1, "a"), Box((2, 3), "b")])
    assert leaves == [1, 2, 3]
    out = tu.tree_unflatten(treedef, [4, 5, 6])
    assert out[0].value == 4 and out[0].label == "a" and out[1].value == (5, 6)
    with pytest.raises(ValueError, match="already registered"):
        tu.register_pytree_node(Box, lambda b: ([], None), lambda a, c: None)


def test_register_pytree_node_class():
    @tu.register_pytree_node_class
    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b

        def tree_flatten(self):
            return (self.a, self.b), None

        @classmethod
        def tree_unflatten(cls, aux, children):
            return cls(*children)

    assert tu.tree_leaves(Pair(1, Pair(2, 3))) == [1, 2, 3]


def test_register_dataclass_with_static_fields():
    @tu.register_dataclass
    @dataclasses.dataclass
    class Layer:
        weight: object
        bias: object
        name: str = dataclasses.field(default="dense", metadata={"static": True})

    layer = Layer(1, 2, "fc")
    leaves, treedef = tu.tree_flatten(layer)
    assert leaves == [1, 2]
    rebuilt = tu.tree_unflatten(treedef, [3, 4])
    assert rebuilt == Layer(3, 4, "fc")
    assert tu.tree_structure(Layer(1, 2, "fc")) != tu.tree_structure(Layer(1, 2, "other"))


def test_register_dataclass_explicit_fields():
    class Plain:
        def __init__(self, w, size):
            self.w, self.size = w, size

    tu.register_dataclass(Plain, data_fields=["w"], meta_fields=["size"])
    leaves, treedef = tu.tree_flatten(Plain([1, 2], 3))
    assert leaves == [1, 2]
    assert tu.tree_unflatten(treedef, [5, 6]).size == 3


def test_is_leaf_and_reduce():
    tree = [(1, 2), (3, 4)]
    assert tu.tree_leaves(tree, is_leaf=lambda x: isinstance(x, tuple)) == [(1, 2), (3, 4)]
    assert tu.tree_reduce(lambda a, b: a + b, tree) == 10
    assert tu.tree_reduce(lambda a, b: a + b, tree, 5) == 15
    assert tu.tree_all([True, (True,)]) and not tu.tree_all([True, (False,)])


def test_unflatten_leaf_count_errors():
    treedef = tu.tree_structure((1, 2))
    with pytest.raises(ValueError, match="too few"):
        tu.tree_unflatten(treedef, [1])
    with pytest.raises(ValueError, match="too many"):
        tu.tree_unflatten(treedef, [1, 2, 3])


def test_leaf_paths_name_dict_keys_sequence_positions_and_fields():
    import collections
    from fjit.tree_util import keystr, tree_flatten_with_path, tree_leaves_with_path
    P = collections.namedtuple("P", "w b")
    tree = {"b": P(4, 5), "a": [1, (2, 3)], "c": None}
    got = [(keystr(p), leaf) for p, leaf in tree_leaves_with_path(tree)]
    assert got == [("['a'][0]", 1), ("['a'][1][0]", 2), ("['a'][1][1]", 3),
                   ("['b'].w", 4), ("['b'].b", 5)]
    pairs, treedef = tree_flatten_with_path(tree)
    assert [leaf for _, leaf in pairs] == [1, 2, 3, 4, 5] and treedef.num_leaves == 5
    assert keystr(tree_leaves_with_path(7)[0][0]) == ""


def test_structures_are_shared_and_later_registrations_are_seen():
    """Flattening the same kind of tree gives the same PyTreeDef object (jit's cache key is
    then an identity check); a type first seen as a leaf and registered later is a node."""
    from fjit import tree_util

    class Later:
        def __init__(self, a, b):
            self.a, self.b = a, b
    first = tree_util.tree_structure([Later(1, 2), {"k": (3, 4)}])
    assert tree_util.tree_structure([Later(5, 6), {"k": (7, 8)}]) is first
    assert first.num_leaves == 3
    tree_util.register_pytree_node(Later, lambda x: ((x.a, x.b), None),
                                   lambda _, c: Later(*c))
    leaves, treedef = tree_util.tree_flatten([Later(1, 2), {"k": (3, 4)}])
    assert leaves == [1, 2, 3, 4] and treedef != first
    back = tree_util.tree_unflatten(treedef, leaves)
    assert (back[0].a, back[0].b) == (1, 2)


def test_treedef_tuple_is_the_structure_of_the_tuple():
    from fjit import tree_util
    a = tree_util.tree_structure([1, {"x": 2}])
    b = tree_util.tree_structure((3,))
    assert tree_util.treedef_tuple((a, b)) == tree_util.tree_structure(([1, {"x": 2}], (3,)))
    assert tree_util.tree_unflatten(tree_util.treedef_tuple((a, b)), [1, 2, 3]) == \
        ([1, {"x": 2}], (3,))
