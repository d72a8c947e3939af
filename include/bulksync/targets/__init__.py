"""Targets: where staged data is loaded, each load in one transaction."""
