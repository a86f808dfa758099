"""S3: where every object lives (layout), landing batches, error documents, manifests."""
