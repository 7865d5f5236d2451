"""The aws profile's infrastructure as code, its access model, and a local test bed of real S3 and AWS API servers."""
