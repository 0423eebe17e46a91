"""Deployment: artifacts, export, scoring and serving."""
