"""Persistence: the embedded SQLite store (`sqlite`) and its schema (`schema`)."""
