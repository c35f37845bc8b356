"""hetflow — workflow engine for atomistic models of halide-perovskite heterostructures.

Layers (see README, "Architecture"):

* :mod:`hetflow.structures`  — pure geometry on :class:`ase.Atoms` (never imports a calculator)
* :mod:`hetflow.calculators` — xTB (tblite, xtb-python) and CP2K behind one protocol
* :mod:`hetflow.analysis`    — pure functions on structures and results
* :mod:`hetflow.workflows`   — the engine: task graph, result store, executors (never imports recipes)
* :mod:`hetflow.recipes`     — the science recipes over the engine (Tables S1–S3, ZIF, screen, free energy)
* :mod:`hetflow.commands`    — the CLI's command groups (:mod:`hetflow.cli` registers them)

Units inside hetflow are eV and Å; kcal/mol and kJ/mol appear only in reports.
"""

__version__ = "0.1.0"
