"""ci-modelver: model versioning that lives in CI."""

__version__ = "0.1.0"
