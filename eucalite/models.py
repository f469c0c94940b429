"""Imports every module that defines tables, so Alembic and tests see the whole schema."""
from .accounts import AccessKey, Account, User  # noqa: F401
from .s3.models import Bucket, MultipartUpload, ObjectVersion, UploadPart  # noqa: F401
