"""Walrus: the S3-compatible object store (buckets, objects, multipart, ACLs, ...)."""
