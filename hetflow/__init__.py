"""hetflow — workflow engine for atomistic models of halide-perovskite heterostructures.

Layers (see README, "Architecture"):

* :mod:`hetflow.structures`  — pure geometry on :class:`ase.Atoms` (never imports a calculator)
* :mod:`hetflow.calculators` — xTB (tblite, xtb-python) and CP2K behind one protocol
* :mod:`hetflow.analysis`    — pure functions on structures and results
* :mod:`hetflow.workflows`   — task graph, result store, executors, recipes

Units inside hetflow are eV and Å; kcal/mol and kJ/mol appear only in reports.
"""

__version__ = "0.1.0"
