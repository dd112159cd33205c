"""Metrics: classification (here), generation and restoration (their own modules)."""
