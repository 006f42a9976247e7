"""Background jobs and version files (issue 3). Imported by registry/models.py."""
