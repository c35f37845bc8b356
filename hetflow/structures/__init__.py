"""Pure geometry on :class:`ase.Atoms`.  Never imports a calculator.

Per-atom labels travel as ``atoms.arrays``:

* ``domain`` (str): ``"perovskite"`` or ``"chalcohalide"`` (or a ZIF/fragment name)
* ``layer`` (int): 0 = shared interfacial layer, +1, +2 … into the perovskite,
  −1, −2 … into the partner (chalcohalide)
* ``role`` (str): ``"A"`` (Cs), ``"B"`` (Pb in the perovskite), ``"X"`` (halide),
  ``"S"`` (chalcogenide), ``"M"`` (metal cation of the partner phase)
"""
