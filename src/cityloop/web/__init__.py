"""The web: HTTP API under /api/v1, public pages, staff workbenches, dashboard."""
