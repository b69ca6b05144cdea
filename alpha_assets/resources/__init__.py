"""Dagster resources: thin configurable wrappers around plain modules."""
