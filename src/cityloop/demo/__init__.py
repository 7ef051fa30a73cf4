"""The demo city: a district with staff, catalog, grid and a year of case history."""
