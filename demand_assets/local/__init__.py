"""The local stack: a moto server as AWS, provisioned like production, and the demo."""
