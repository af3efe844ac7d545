"""Execution modes: how the models of a pipeline run on one frame (docs/execution-modes.md)."""
