"""Execution modes: how the models of a pipeline run on one frame (spec 3.2-3.5)."""
