"""The import rules of docs/architecture.md hold for every module of the package."""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "augpro_keras"
DOC = ROOT / "docs" / "architecture.md"
ANYTHING = "(anything)"


def rules():
    """`{module: (allowed, excluded, extra)}` from the table of docs/architecture.md.

    A cell lists the allowed modules, says "(nothing)" or "(anything)", or
    says "(anything but `x`)" and then the dotted modules of `x` that are
    allowed all the same.
    """
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Which module may import which", 1)[1]
    table = {}
    for module, cell in re.findall(r"^\| `([\w.]+)` \| (.+) \|$", section, flags=re.MULTILINE):
        cell = cell.strip()
        if cell == ANYTHING:
            table[module] = (ANYTHING, set(), set())
        elif cell.startswith("(anything but"):
            excluded, extra = cell.split(")", 1)
            table[module] = (ANYTHING, set(re.findall(r"`([\w.]+)`", excluded)), set(re.findall(r"`([\w.]+)`", extra)))
        else:
            table[module] = (set(re.findall(r"`([\w.]+)`", cell)), set(), set())
    return table


def group(module):
    """`layers` for `augpro_keras.layers.similarity`, `__init__` for `augpro_keras`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path):
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(source, module, is_package):
    """The `augpro_keras` modules that `source` imports, anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            # `from augpro_keras import layers` imports the module `augpro_keras.layers`;
            # `from augpro_keras import Distiller` imports a name of the package root.
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append(candidate if _is_module(candidate) else base)
    return [name for name in found if name == "augpro_keras" or name.startswith("augpro_keras.")]


def _is_module(name):
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(module, imports, table):
    """Human-readable import violations of `module`."""
    own = group(module)
    if own not in table:
        return [f"{module}: '{own}' has no row in docs/architecture.md; add one with what it may import"]
    allowed, excluded, extra = table[own]
    problems = []
    for name in imports:
        target = group(name)
        if target == own or name.removeprefix("augpro_keras.") in extra:
            continue
        if allowed == ANYTHING:
            ok = target not in excluded
        else:
            ok = target in allowed
        if not ok:
            what = f"anything but {sorted(excluded)}" if allowed == ANYTHING else (
                sorted(allowed) or "nothing of the package")
            problems.append(f"{module} imports {name}: '{own}' may import only {what} (docs/architecture.md)")
    return problems


def package_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        yield path, module_name(path)


def test_the_table_names_every_top_level_module():
    table = rules()
    names = {group(module) for _, module in package_modules()}
    assert names <= set(table), sorted(names - set(table))
    assert "layers" in table and "augmentations" in table and "distiller" in table


def test_every_import_follows_the_rules():
    table = rules()
    problems = []
    for path, module in package_modules():
        imports = imported_modules(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
        problems += violations(module, imports, table)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("augpro_keras.augmentations.example", "from augpro_keras import distiller", "imports augpro_keras.distiller"),
        ("augpro_keras.augmentations.example", "from augpro_keras.distiller import Distiller", "augpro_keras.distiller"),
        ("augpro_keras.augmentations.example", "def f():\n    import augpro_keras.cli.main\n", "augpro_keras.cli.main"),
        ("augpro_keras.layers.example", "from augpro_keras import losses", "augpro_keras.losses"),
        ("augpro_keras.layers.example", "import augpro_keras", "imports augpro_keras:"),
        ("augpro_keras.models.example", "from augpro_keras.augmentations import base", "augpro_keras.augmentations"),
        ("augpro_keras.data.example", "from augpro_keras.models import protocol", "augpro_keras.models"),
        ("augpro_keras.callbacks", "from augpro_keras.cli import quiet", "augpro_keras.cli"),
        ("augpro_keras", "from augpro_keras.cli import main", "augpro_keras.cli.main"),
        ("augpro_keras.layers.example", "from ..augmentations import base", "augpro_keras.augmentations"),
    ],
)
def test_violations_are_found(module, source, expected):
    """The checker itself: each of these imports breaks a rule and is reported."""
    problems = violations(module, imported_modules(source, module, is_package=False), rules())
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    "module, source",
    [
        ("augpro_keras.layers.example", "from augpro_keras.api_export import export\nfrom augpro_keras import input_checks"),
        ("augpro_keras.layers.example", "from augpro_keras.layers import similarity"),
        ("augpro_keras.augmentations.example", "from augpro_keras.augmentations import base\nfrom augpro_keras import losses"),
        ("augpro_keras.cli.example", "import augpro_keras\nfrom augpro_keras import Distiller"),
        ("augpro_keras", "from augpro_keras.cli.quiet import native_start_up_notices_hidden"),
    ],
)
def test_allowed_imports_pass(module, source):
    assert violations(module, imported_modules(source, module, is_package=False), rules()) == []
