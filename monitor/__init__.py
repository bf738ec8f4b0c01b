"""monitor: polls news feeds, dedupes against a seed corpus, tags and mails digests. No I/O."""

__version__ = "0.1.0"
__all__ = ["__version__"]
