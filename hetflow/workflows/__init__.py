"""The engine: task graph, result store, executors.  The science recipes that run on it live
one floor up, in :mod:`hetflow.recipes` (this package never imports them)."""
