"""Package data: shipped WGS-84 boundaries (see ATTRIBUTION.md)."""
