"""Alerts v2: the Python side of an alert pipeline whose logic lives in PostgreSQL."""
