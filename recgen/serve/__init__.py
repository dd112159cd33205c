"""REST API and web UI (`recgen serve`)."""
