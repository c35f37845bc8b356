"""Orchestration: task graph, result store, executors and recipes."""
