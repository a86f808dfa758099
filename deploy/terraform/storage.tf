# The archive bucket (SPEC section 4) and the key that encrypts it.

resource "aws_kms_key" "archive" {
  description             = "${local.name}: the archive bucket, Athena results"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "archive" {
  name          = "alias/${local.name}-archive"
  target_key_id = aws_kms_key.archive.key_id
}

resource "aws_s3_bucket" "archive" {
  bucket = var.bucket_name
}

resource "aws_s3_bucket_ownership_controls" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket = aws_s3_bucket.archive.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "archive" {
  bucket = aws_s3_bucket.archive.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.archive.arn
    }
    bucket_key_enabled = true
  }
}

data "aws_iam_policy_document" "archive_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.archive.arn, "${aws_s3_bucket.archive.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyTlsBelow12"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.archive.arn, "${aws_s3_bucket.archive.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }

  statement {
    sid       = "DenyOtherEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.archive.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  statement {
    sid       = "DenyOtherKmsKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.archive.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.archive.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "archive" {
  bucket = aws_s3_bucket.archive.id
  policy = data.aws_iam_policy_document.archive_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.archive]
}

# Lifecycle, one rule per prefix (the prefixes do not overlap; a test holds every key family of
# demand_assets/storage/layout.py to exactly one rule):
# - landing/{type}/: raw batches are the source of every rebuild (compaction, backfill, a schema
#   that gains a field) and of the row-count check, and a rebuild reads every batch a partition
#   ever had: a batch that expired would leave the older compacted file beside the new one and
#   double its changes. So they never expire; they move to cheaper instant-read classes instead.
#   One rule per record type (demand_assets/records/schemas.py), since landing/ also holds:
# - landing/_batches/: each batch's summary (whether it landed whole; the checks and the nightly
#   compaction read them) and its eventID digests (.ids, the dedup window reads the last hour's).
#   S3 filters by prefix, not suffix, so the .ids share the summaries' rule: kept, like landing.
# - landing/_pending/: a batch's mark lives until an archive run has written all of its
#   partitions and deletes it; a mark that expired would leave its batch unarchived. Never
#   expire (the marks of a failed run wait for the next). A deleted mark's old version goes
#   after a day: the sensor lists these prefixes every tick, and a listing steps over every
#   delete marker whose versions are still kept.
# - landing/_intents/: what a tick will land, read again only by a repeat of that tick, which
#   starts from the intent's checkpoints; once the stream has trimmed those, nothing can read
#   them. They expire a day after the stream's retention.
# - errors/: kept for replay after a fix, then expire.
# - avro/, parquet/: the archive itself; only superseded versions (files a compaction replaced)
#   expire.
# - athena-results/, dagster/compute-logs/: operational, short-lived.
locals {
  landing_transitions = [
    { days = var.landing_transition_days.standard_ia, storage_class = "STANDARD_IA" },
    { days = var.landing_transition_days.glacier_ir, storage_class = "GLACIER_IR" },
  ]
  intents_expiration_days = ceil(var.stream_retention_hours / 24) + 1

  lifecycle_rules = {
    landing-demand = {
      prefix          = "${local.archive_prefix}/landing/demand/"
      expiration_days = null
      transitions     = local.landing_transitions
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    landing-notification = {
      prefix          = "${local.archive_prefix}/landing/notification/"
      expiration_days = null
      transitions     = local.landing_transitions
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    landing-event = {
      prefix          = "${local.archive_prefix}/landing/event/"
      expiration_days = null
      transitions     = local.landing_transitions
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    landing-sale = {
      prefix          = "${local.archive_prefix}/landing/sale/"
      expiration_days = null
      transitions     = local.landing_transitions
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    batches = {
      prefix          = "${local.archive_prefix}/landing/_batches/"
      expiration_days = null
      transitions     = local.landing_transitions
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    pending = {
      prefix          = "${local.archive_prefix}/landing/_pending/"
      expiration_days = null
      transitions     = []
      noncurrent_days = 1
    }
    intents = {
      prefix          = "${local.archive_prefix}/landing/_intents/"
      expiration_days = local.intents_expiration_days
      transitions     = []
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    errors = {
      prefix          = "${local.archive_prefix}/errors/"
      expiration_days = var.errors_expiration_days
      transitions     = [{ days = 30, storage_class = "STANDARD_IA" }]
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    avro = {
      prefix          = "${local.archive_prefix}/avro/"
      expiration_days = null
      transitions     = []
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    parquet = {
      prefix          = "${local.archive_prefix}/parquet/"
      expiration_days = null
      transitions     = []
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    athena-results = {
      prefix          = "${local.athena_prefix}/"
      expiration_days = var.athena_results_expiration_days
      transitions     = []
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    compute-logs = {
      prefix          = "${local.compute_logs_prefix}/"
      expiration_days = var.compute_logs_expiration_days
      transitions     = []
      noncurrent_days = var.noncurrent_version_expiration_days
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  dynamic "rule" {
    for_each = local.lifecycle_rules

    content {
      id     = rule.key
      status = "Enabled"

      filter {
        prefix = rule.value.prefix
      }

      dynamic "transition" {
        for_each = rule.value.transitions

        content {
          days          = transition.value.days
          storage_class = transition.value.storage_class
        }
      }

      expiration {
        days                         = rule.value.expiration_days
        expired_object_delete_marker = rule.value.expiration_days == null ? true : null
      }

      noncurrent_version_expiration {
        noncurrent_days = rule.value.noncurrent_days
      }

      abort_incomplete_multipart_upload {
        days_after_initiation = 7
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.archive]
}
