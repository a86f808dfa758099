# Glue and Athena (SPEC section 6). The tables and partitions are the pipeline's own work (the
# glue_tables and {type}_glue_partitions assets); Terraform makes the database and the workgroup.

resource "aws_glue_catalog_database" "archive" {
  name        = var.glue_database
  description = "demand-assets archive (${var.environment}): {type}_{avro|parquet} tables"
}

resource "aws_athena_workgroup" "checks" {
  name          = local.name
  description   = "demand-assets data-quality checks (${var.environment})"
  state         = "ENABLED"
  force_destroy = false

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = local.athena_output

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.archive.arn
      }
    }
  }
}
