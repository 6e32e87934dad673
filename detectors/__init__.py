"""Features and detectors over exchange records (filled in by the detector issues)."""

__all__: list[str] = []
