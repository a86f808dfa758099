# Least-privilege roles: one execution role (what ECS itself needs to start a task) and one
# task role per kind of task, each with only the actions its process calls:
#   webserver    reads compute logs; stops runs' tasks (terminate from the UI)
#   daemon       launches runs as ECS tasks (run launcher, run monitoring)
#   code_server  the stream sensor: reads Kinesis, lands batches and error documents in S3;
#                and the archive_batches runs, which run as its subprocesses (the run
#                launcher, demand_assets/deploy_launcher.py): partition files, pending marks,
#                Glue partitions, compute logs; the alert sensors, which it evaluates, publish
#                to the alerts topic
#   run          every other run (rebuilds, checks, operation jobs): the archive in S3, Glue,
#                Athena, compute logs
#
# S3 answers a GetObject or HeadObject of a missing key with 404 only to a caller that may list
# the bucket; to any other, 403 AccessDenied. A ListBucket conditioned on s3:prefix does not
# count: that request has no prefix. The code server looks up a key that is usually missing
# every tick (the tick's intent), runs look up sidecars and marks that may be gone, and the code
# reads a 404 as "not there" and a 403 as a failure (storage/s3.py); so the two roles that read
# the archive may list the whole bucket, unconditioned. That shows them only the names of this
# deployment's keys (the archive, Athena results, compute logs), objects they read or write.

locals {
  task_arns            = "arn:${local.partition}:ecs:${var.region}:${local.account_id}:task/${aws_ecs_cluster.this.name}/*"
  run_task_definitions = "arn:${local.partition}:ecs:${var.region}:${local.account_id}:task-definition/${local.run_family}:*"
  glue_catalog         = "arn:${local.partition}:glue:${var.region}:${local.account_id}:catalog"
  glue_database        = "arn:${local.partition}:glue:${var.region}:${local.account_id}:database/${aws_glue_catalog_database.archive.name}"
  glue_tables          = "arn:${local.partition}:glue:${var.region}:${local.account_id}:table/${aws_glue_catalog_database.archive.name}/*"
  archive_objects      = "${aws_s3_bucket.archive.arn}/${local.archive_prefix}/*"
  athena_objects       = "${aws_s3_bucket.archive.arn}/${local.athena_prefix}/*"
  compute_log_objects  = "${aws_s3_bucket.archive.arn}/${local.compute_logs_prefix}/*"
  dynamodb_table       = "arn:${local.partition}:dynamodb:${var.region}:${local.account_id}:table/${var.dynamodb_table_name}"
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Execution role --------------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # has no resource-level permissions
  }

  statement {
    sid = "PullTheImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.image.arn]
  }

  statement {
    sid       = "WriteTaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.tasks : "${group.arn}:*"]
  }

  statement {
    sid       = "InjectThePostgresPassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.postgres.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-tasks"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task roles ------------------------------------------------------------------------------------

resource "aws_iam_role" "task" {
  for_each = toset(["webserver", "daemon", "code-server", "run"])

  name               = "${local.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "webserver" {
  statement {
    sid       = "BuildTheRunLauncher"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"] # has no resource-level permissions
  }

  statement {
    sid       = "TerminateRuns"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.task_arns]
  }

  statement {
    sid       = "ShowRunWorkerLogs"
    actions   = ["logs:GetLogEvents"]
    resources = ["${aws_cloudwatch_log_group.tasks["runs"].arn}:*"]
  }

  statement {
    sid       = "ListComputeLogs"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.archive.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.compute_logs_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadComputeLogs"
    actions   = ["s3:GetObject", "s3:DeleteObject"]
    resources = [local.compute_log_objects]
  }

  statement {
    sid       = "DecryptTheBucket"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.archive.arn]
  }
}

data "aws_iam_policy_document" "daemon" {
  statement {
    sid       = "BuildTheRunLauncher"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"] # has no resource-level permissions
  }

  statement {
    sid       = "LaunchRuns"
    actions   = ["ecs:RunTask"]
    resources = [local.run_task_definitions]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  statement {
    sid       = "TagRunTasks"
    actions   = ["ecs:TagResource"]
    resources = [local.task_arns]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }

  statement {
    sid       = "MonitorAndStopRuns"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.task_arns]
  }

  statement {
    sid       = "ReadTheDaemonsOwnNetwork"
    actions   = ["ec2:DescribeNetworkInterfaces"]
    resources = ["*"] # has no resource-level permissions
  }

  statement {
    sid       = "PassTheRunRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task["run"].arn, aws_iam_role.execution.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReportFailedRunWorkers"
    actions   = ["logs:GetLogEvents"]
    resources = ["${aws_cloudwatch_log_group.tasks["runs"].arn}:*"]
  }
}

data "aws_iam_policy_document" "code_server" {
  statement {
    sid       = "BuildTheRunLauncher"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"] # has no resource-level permissions
  }

  statement {
    sid = "ReadTheStream"
    actions = [
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.changes.arn]
  }

  statement {
    sid       = "ListTheBucket" # unconditioned: a missing key is then a 404, not a 403 (above)
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.archive.arn]
  }

  statement {
    sid       = "ReadTheArchive"
    actions   = ["s3:GetObject"]
    resources = [local.archive_objects]
  }

  statement {
    sid     = "LandBatchesAndErrors"
    actions = ["s3:PutObject"]
    resources = [
      "${aws_s3_bucket.archive.arn}/${local.archive_prefix}/landing/*",
      "${aws_s3_bucket.archive.arn}/${local.archive_prefix}/errors/*",
    ]
  }

  # archive_batches runs: they write and replace partition files (data and sidecars) and delete
  # the pending marks of what they archived; never a landed batch, a summary or an error.
  statement {
    sid     = "WritePartitionFiles"
    actions = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"]
    resources = [ # data files and their sidecars (storage/layout.py)
      "${aws_s3_bucket.archive.arn}/${local.archive_prefix}/avro/*",
      "${aws_s3_bucket.archive.arn}/${local.archive_prefix}/parquet/*",
    ]
  }

  statement {
    sid       = "ClearPendingMarks"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.archive.arn}/${local.archive_prefix}/landing/_pending/*"]
  }

  statement {
    sid       = "UploadComputeLogs" # the runs' stdout and stderr
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [local.compute_log_objects]
  }

  statement {
    sid       = "UseTheBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.archive.arn]
  }

  statement {
    sid = "RegisterPartitions" # archive_batches' register_{type}_partitions steps
    actions = [
      "glue:BatchCreatePartition",
      "glue:CreateDatabase",
      "glue:CreateTable",
      "glue:GetPartitions",
      "glue:GetTable",
      "glue:UpdateTable",
    ]
    resources = [local.glue_catalog, local.glue_database, local.glue_tables]
  }

  statement {
    sid       = "PublishAlerts" # demand_alert_sensor, demand_run_failure_sensor (alerts.tf)
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "EncryptAlerts" # the topic's key: SNS asks for a data key on the publisher's behalf
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.alerts.arn]
  }
}

data "aws_iam_policy_document" "run" {
  statement {
    sid       = "BuildTheRunLauncher"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"] # has no resource-level permissions
  }

  statement {
    sid       = "ListTheBucket" # unconditioned: a missing key is then a 404, not a 403 (above)
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.archive.arn]
  }

  statement {
    sid       = "LocateTheBucket"
    actions   = ["s3:GetBucketLocation"] # Athena asks where its result location is
    resources = [aws_s3_bucket.archive.arn]
  }

  statement {
    sid       = "WriteTheArchive"
    actions   = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    resources = [local.archive_objects]
  }

  statement {
    sid = "AthenaResults"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = [local.athena_objects]
  }

  statement {
    sid       = "UploadComputeLogs"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [local.compute_log_objects]
  }

  statement {
    sid       = "UseTheBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.archive.arn]
  }

  statement {
    sid = "CatalogTheArchive"
    actions = [
      "glue:BatchCreatePartition",
      "glue:BatchGetPartition",
      "glue:CreateDatabase",
      "glue:CreateTable",
      "glue:GetDatabase",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:GetTable",
      "glue:GetTables",
      "glue:UpdateTable",
    ]
    resources = [local.glue_catalog, local.glue_database, local.glue_tables]
  }

  statement {
    sid       = "BootstrapFromTheTable" # the bootstrap_from_table job scans the table
    actions   = ["dynamodb:DescribeTable", "dynamodb:Scan"]
    resources = [local.dynamodb_table]
  }

  statement {
    sid = "RunTheChecks"
    actions = [
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetWorkGroup",
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
    ]
    resources = [aws_athena_workgroup.checks.arn]
  }
}

locals {
  task_policies = {
    webserver     = data.aws_iam_policy_document.webserver.json
    daemon        = data.aws_iam_policy_document.daemon.json
    "code-server" = data.aws_iam_policy_document.code_server.json
    run           = data.aws_iam_policy_document.run.json
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.task_policies

  name   = each.key
  role   = aws_iam_role.task[each.key].id
  policy = each.value
}
