"""fjit's layers point down: base <- core <- interpreters <- lax <- runtime and compilers <-
the user API <- testing tools.  Every import in the package, function-level ones included,
is read with `ast`; one that points up fails here, naming the file and line."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "fjit"

# (layer, module prefixes), bottom first.  A module may import its own layer and those below.
LAYERS = [
    ("base", ["fjit.config", "fjit.errors", "fjit.dtypes", "fjit.tree_util", "fjit.limits",
              "fjit.devices", "fjit.recompiles"]),
    ("core", ["fjit.core", "fjit.pretty", "fjit.typecheck", "fjit.array"]),
    ("interpreters", ["fjit.interpreters"]),
    ("lax", ["fjit.lax"]),
    ("runtime", ["fjit.runtime", "fjit.compiler"]),
    ("api", ["fjit", "fjit.api", "fjit.api_autodiff", "fjit.api_vmap", "fjit.numpy", "fjit.nn",
             "fjit.optim", "fjit.random", "fjit.custom_derivatives", "fjit.serialization",
             "fjit.cross_iteration", "fjit.test_util", "fjit.models", "fjit.torch_pickle"]),
    ("testing", ["fjit.testing"]),
]
RANK = {name: k for k, (name, _) in enumerate(LAYERS)}


def layer_of(module: str) -> str:
    """The layer of a module: the longest matching prefix wins (`fjit` is the API)."""
    best, length = None, -1
    for name, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > length:
                best, length = name, len(p)
    return best


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imports(name, path):
    """(imported fjit module, line) for every import statement in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:   # `from . import lax` imports the module fjit.lax
                yield f"{target}.{alias.name}", node.lineno


def _resolve(target, known):
    while target not in known and "." in target:
        target = target.rpartition(".")[0]
    return target if target in known else None


def violations():
    known = dict(modules())
    found = []
    for name, path in known.items():
        own = layer_of(name)
        assert own is not None, f"{name} is in no layer: add it to LAYERS"
        for target, line in imports(name, path):
            target = _resolve(target, known)
            if target is None:
                continue
            other = layer_of(target)
            if RANK[other] > RANK[own]:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {name} ({own}) "
                             f"imports {target} ({other})")
            if own == "runtime" and name.startswith("fjit.runtime") and \
                    target.startswith("fjit.compiler"):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: the runtime imports "
                             f"the compiler {target} (backends register themselves)")
            mine, theirs = _target_of(name), _target_of(target)
            if mine and theirs and mine != theirs and theirs not in SHARED_BY_TARGETS:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: the {mine} target "
                             f"imports the {theirs} target (share through "
                             f"{'/'.join(SHARED_BY_TARGETS)})")
            if name.startswith("fjit.compiler") and not name.startswith(TARGETS) and \
                    target.startswith(TARGETS) and name not in NEUTRAL_EXCEPTIONS:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: the neutral compiler "
                             f"imports the target {target}")
    return found


TARGETS = "fjit.compiler.targets"
# What several targets share (the C-dialect kernel data); targets import nothing else of
# each other's.
SHARED_BY_TARGETS = ("c_family",)


def _target_of(module: str):
    """The target package a module belongs to (c, cuda, c_family), or None."""
    if not module.startswith(TARGETS + "."):
        return None
    return module[len(TARGETS) + 1:].split(".")[0]
# Neutral compiler modules that still name a target, and why (to be removed).
NEUTRAL_EXCEPTIONS: dict = {}


def test_every_import_points_down():
    found = violations()
    assert not found, "imports that point up a layer:\n" + "\n".join(found)


def test_the_layer_map_knows_every_module():
    unplaced = [name for name, _ in modules() if layer_of(name) is None]
    assert not unplaced


@pytest.mark.parametrize("module, layer", [("fjit", "api"), ("fjit.lax.cond", "lax"),
                                           ("fjit.compiler.targets.c.executable", "runtime"),
                                           ("fjit.core", "core")])
def test_layer_of(module, layer):
    assert layer_of(module) == layer


# Reads of the environment outside fjit/config.py, with why they are not fjit options.
ENVIRONMENT_USERS = {
    "fjit.compiler.targets.c.toolchain": "sets GOMP_SPINCOUNT for libgomp before it loads",
}


def test_settings_are_read_from_the_environment_only_by_config():
    """One mechanism for settings: each is a fjit.config option with its variable."""
    readers = set()
    for name, path in modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.add(name)
    assert readers - {"fjit.config"} == set(ENVIRONMENT_USERS)


def test_no_import_the_checks_above_cannot_see():
    """`import fjit.x` binds `fjit` (the whole user API) in a lower layer; importlib and
    __import__ hide what is imported.  Lower layers use relative imports only."""
    found = []
    for name, path in modules():
        low = RANK[layer_of(name)] < RANK["api"]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if low and isinstance(node, ast.Import) and \
                    any(a.name == "fjit" or a.name.startswith("fjit.") for a in node.names):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: import fjit")
            if isinstance(node, ast.Call) and (
                    (isinstance(node.func, ast.Name) and node.func.id == "__import__") or
                    (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: dynamic import")
    assert not found, "\n".join(found)
