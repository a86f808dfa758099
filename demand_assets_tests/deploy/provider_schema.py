"""The AWS provider's schema for the resource and data types deploy/terraform uses, kept as a
snapshot (aws_provider_schema.json) so that the arguments and attributes can be checked without
the provider binary, which `terraform init` cannot download here.

The snapshot is read from the jsii assembly of the `cdktf-cdktf-provider-aws` wheel, which is
generated from the provider's own schema. After adding a resource type, or to move to a newer
provider, regenerate it:

    pip download --no-deps -d /tmp/cdktf cdktf-cdktf-provider-aws==21.22.1
    .venv/bin/python -m demand_assets_tests.deploy.provider_schema /tmp/cdktf/*.whl
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
import zipfile
from functools import cache
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("aws_provider_schema.json")
PREFIX = "@cdktf/provider-aws."


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def jsii_class(kind: str, type_: str) -> str:
    """`aws_s3_bucket` -> `S3Bucket`; data sources are `DataAws...`."""
    pascal = "".join(part.title() for part in type_.removeprefix("aws_").split("_"))
    return f"DataAws{pascal}" if kind == "data" else pascal


def generate(wheel: Path, used: set[tuple[str, str]]) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        (tgz,) = [n for n in archive.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(archive.read(tgz))) as tar:
            assembly = json.load(tar.extractfile("package/.jsii"))
    types = assembly["types"]

    def struct(fqn: str, depth: int = 0) -> dict:
        tree = {}
        for prop in types[fqn].get("properties", []):
            entry = {"required": not prop.get("optional", False)}
            nested = [f for f in re.findall(r"'fqn': '([^']+)'", str(prop["type"]))]
            nested = [f for f in nested if f.startswith(PREFIX) and f in types]
            if nested and types[nested[0]]["kind"] == "interface" and depth < 6:
                entry["nested"] = struct(nested[0], depth + 1)
            tree[snake(prop["name"])] = entry
        return tree

    def find(kind: str, type_: str) -> tuple[str, str]:
        name = jsii_class(kind, type_)
        for fqn in types:
            module, _, leaf = fqn.removeprefix(PREFIX).partition(".")
            if module.lower() == name.lower() and leaf in (f"{name}Config", f"{name}AConfig"):
                return fqn, fqn.removesuffix("Config")
        raise KeyError(f"{kind} {type_} is not in the provider schema")

    snapshot: dict = {
        "source": f"{wheel.name} (hashicorp/aws {provider_version(assembly)})",
        "resource": {},
        "data": {},
    }
    for kind, type_ in sorted(used):
        config, cls = find(kind, type_)
        attributes = {snake(p["name"]) for p in types[cls].get("properties", [])}
        attributes = {a for a in attributes if not a.endswith("_input")}
        snapshot[kind][type_] = {
            "arguments": struct(config),
            "attributes": sorted(attributes | set(struct(config))),
        }
    return snapshot


def provider_version(assembly: dict) -> str:
    match = re.search(
        r"aws provider version ([0-9.]+)", assembly.get("readme", {}).get("markdown", "")
    )
    return match.group(1) if match else "unknown"


@cache
def load() -> dict:
    return json.loads(SNAPSHOT.read_text())


def main(argv: list[str]) -> None:
    from demand_assets_tests.deploy.terraform_config import module

    mod = module()
    used = {
        (kind, type_)
        for kind in ("resource", "data")
        for type_, _ in mod.declared(kind)
        if type_.startswith("aws_")
    }
    SNAPSHOT.write_text(json.dumps(generate(Path(argv[0]), used), indent=1, sort_keys=True) + "\n")
    print(f"{SNAPSHOT}: {len(used)} types")


if __name__ == "__main__":
    main(sys.argv[1:])
