"""deploy/terraform read with python-hcl2: the declarations, the references between them, and the
environments' variable files. What `terraform validate` would check, so far as it can be checked
without the providers (which `terraform init` cannot download here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import hcl2

from demand_assets_tests.deploy.instance import DEPLOY

TERRAFORM = DEPLOY / "terraform"
ENVIRONMENTS = ("dev1", "qa1", "preprod1", "prod1")
META_ARGUMENTS = {"count", "for_each", "depends_on", "lifecycle", "provider"}


def plain(node: Any) -> Any:
    """python-hcl2's tree without its markers (comments included: one inside an object literal
    comes out as its block's `__inline_comments__`): keys and string literals unquoted,
    expressions kept as `${...}` text, blocks as lists of dicts."""
    if isinstance(node, dict):
        return {
            unquote(k): plain(v)
            for k, v in node.items()
            if k not in ("__is_block__", "__comments__", "__inline_comments__")
        }
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return unquote(node)
    return node


def unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    return text


def strip_comments(text: str) -> str:
    """HCL source without `#` and `//` comments (strings that hold `#` are left alone)."""
    out = []
    for line in text.splitlines():
        in_string = False
        for i, char in enumerate(line):
            if char == '"' and (i == 0 or line[i - 1] != "\\"):
                in_string = not in_string
            if not in_string and (char == "#" or line[i : i + 2] == "//"):
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


@dataclass
class Module:
    files: dict[str, dict] = field(default_factory=dict)  # file name -> plain tree
    source: str = ""  # every .tf file, comments removed

    def blocks(self, kind: str) -> list[dict]:
        return [b for tree in self.files.values() for b in tree.get(kind, [])]

    @property
    def variables(self) -> dict[str, dict]:
        return {name: body for b in self.blocks("variable") for name, body in b.items()}

    @property
    def locals(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for b in self.blocks("locals"):
            for name, value in b.items():
                assert name not in merged, f"local.{name} defined twice"
                merged[name] = value
        return merged

    def declared(self, kind: str) -> dict[tuple[str, str], dict]:
        """(type, name) -> body of each `resource` or `data` block."""
        found = {}
        for b in self.blocks(kind):
            for typ, named in b.items():
                for name, body in named.items():
                    assert (typ, name) not in found, f"{kind} {typ}.{name} declared twice"
                    found[(typ, name)] = body
        return found

    def references(self, prefix: str) -> set[str]:
        """Names referenced as `var.NAME`, `local.NAME`."""
        return set(re.findall(rf"(?<![\w.]){prefix}\.(\w+)", self.source))

    def resource_references(self) -> set[tuple[str, str, str, str | None]]:
        """(kind, type, name, attribute) of `aws_x.name[.attr]` and `data.aws_x.name[.attr]`."""
        found = set()
        pattern = r"(?<![\w.\-/])(data\.)?((?:aws|random)_\w+)\.(\w+)(?:\[[^\]]*\])?(?:\.(\w+))?"
        for m in re.finditer(pattern, self.source):
            found.add(("data" if m.group(1) else "resource", m.group(2), m.group(3), m.group(4)))
        return found


@cache
def module() -> Module:
    mod = Module()
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as handle:
            mod.files[path.name] = plain(hcl2.load(handle))
        mod.source += strip_comments(path.read_text()) + "\n"
    return mod


@cache
def tfvars(environment: str) -> dict[str, Any]:
    with (TERRAFORM / "environments" / f"{environment}.tfvars").open() as handle:
        return plain(hcl2.load(handle))


def backend(environment: str) -> dict[str, Any]:
    with (TERRAFORM / "environments" / f"{environment}.s3.tfbackend").open() as handle:
        return plain(hcl2.load(handle))


# Variable types ---------------------------------------------------------------------------------


def parse_type(text: str) -> Any:
    """A type constraint as a tree: "string" | ("list", T) | ("object", {name: T}) ..."""
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    tree, rest = _type(text.replace(" ", ""))
    assert not rest, f"cannot read type {text!r}"
    return tree


def _type(text: str) -> tuple[Any, str]:
    for primitive in ("string", "number", "bool", "any"):
        if text.startswith(primitive) and not text[len(primitive) :].startswith("("):
            return primitive, text[len(primitive) :]
    for collection in ("list", "set", "map"):
        if text.startswith(collection + "("):
            inner, rest = _type(text[len(collection) + 1 :])
            assert rest.startswith(")")
            return (collection, inner), rest[1:]
    if text.startswith("object({"):
        rest = text[len("object({") :]
        attributes = {}
        while not rest.startswith("})"):
            name, rest = rest.split("=", 1)
            attributes[name], rest = _type(rest)
            rest = rest.removeprefix(",")
        return ("object", attributes), rest[2:]
    raise AssertionError(f"cannot read type {text!r}")


def type_errors(value: Any, type_: Any, path: str) -> list[str]:
    """What in a tfvars value does not fit the variable's type (numbers and bools are literals
    there, strings quoted)."""
    if type_ == "any":
        return []
    if type_ == "string":
        ok = isinstance(value, str)
    elif type_ == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif type_ == "bool":
        ok = isinstance(value, bool)
    elif type_[0] in ("list", "set"):
        if not isinstance(value, list):
            return [f"{path}: not a {type_[0]}"]
        return [e for i, v in enumerate(value) for e in type_errors(v, type_[1], f"{path}[{i}]")]
    elif type_[0] == "map":
        if not isinstance(value, dict):
            return [f"{path}: not a map"]
        return [e for k, v in value.items() for e in type_errors(v, type_[1], f"{path}.{k}")]
    else:
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        if set(value) != set(type_[1]):
            return [f"{path}: keys {sorted(value)} are not {sorted(type_[1])}"]
        return [e for k, t in type_[1].items() for e in type_errors(value[k], t, f"{path}.{k}")]
    return [] if ok else [f"{path}: {value!r} is not a {type_}"]
