"""The wheel ships every package: pyproject.toml lists packages by hand, and an editable
install (what the tests run on) would hide a missing one."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_fjit_package_is_listed_in_pyproject():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    listed = set(re.findall(r'"(fjit(?:\.[a-z_]+)*)"', text.split("packages = [", 1)[1]
                            .split("]", 1)[0]))
    found = {os.path.relpath(d, ROOT).replace(os.sep, ".")
             for d, _, files in os.walk(os.path.join(ROOT, "fjit")) if "__init__.py" in files}
    assert found - listed == set(), f"packages missing from pyproject.toml: {found - listed}"
    assert "fjit.templates" in listed
