"""A failing fuzz program printed as a standalone script (imports only numpy and fjit) that
runs the failing mode on the failing target and raises (or fails an assert) while the
failure is there."""
from __future__ import annotations

import inspect

from . import harness
from .expr import FuzzProgram, array_source, function_source
from .oracle import batch_size, float_argnums


def reproducer_source(prog: FuzzProgram, mode: str, target: str, note: str = "",
                      standalone: bool = True) -> str:
    """The script; `standalone=False` imports the harness from fjit.testing instead of
    carrying its source (shorter, for test failure messages)."""
    lines = ['"""fjit fuzz reproducer' + (f": {note}" if note else "") + "",
             f"seed {prog.seed!r}; mode {mode}; target {target} (compared with eager fjit)",
             '"""',
             "import numpy as np", "", "import fjit", "import fjit.numpy as jnp",
             "from fjit import lax, nn", ""]
    if prog.x64:
        lines += ['fjit.config.update("enable_x64", True)', ""]
    lines += ["", function_source(prog), "", ""]
    inputs = ", ".join(array_source(v) for _, v in prog.inputs)
    lines.append(f"inputs = [{inputs}]")
    helpers = [harness.transform, harness.run, harness.mismatched, harness.compare]
    if mode in ("grad", "jit_vmap_grad"):
        helpers.insert(0, harness.loss_of)
    if mode in ("vmap", "jit_vmap_grad"):
        helpers.insert(0, harness.batch)
        args = f"args = [batch(x, {batch_size(prog)}) for x in inputs]"
    else:
        args = "args = inputs"
    if standalone:
        lines += ["", "", "# --- the fuzzer's harness (fjit/testing/harness.py) ---", ""]
        lines.append(f"TOLERANCE = {harness.TOLERANCE!r}")
        for h in helpers:
            lines += ["", "", inspect.getsource(h).rstrip()]
    else:
        names = ", ".join(h.__name__ for h in helpers)
        lines.insert(lines.index("from fjit import lax, nn") + 1,
                     f"from fjit.testing.harness import {names}")
    lines += ["", "", args,
              f"argnums = {float_argnums(prog)!r}  # the floating inputs grad differentiates",
              f'expected = run(f, "{mode}", args, argnums, "eager")',
              f'got = run(f, "{mode}", args, argnums, "{target}")',
              "problem = compare(expected, got)",
              'assert problem is None, problem',
              'print("no failure: fixed")', ""]
    return "\n".join(lines)
