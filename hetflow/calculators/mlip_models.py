"""The catalogue of offline machine-learned potentials: every pretrained model inside the wheels.

Pure data (no torch import): the spec layer (:mod:`hetflow.calculators.base`), the recipes' option
validation and the CLI read it; :mod:`hetflow.calculators.mlip` loads the weights.

=================== ========== ================================ ========= ======= =====================
``spec.method``     backend    weights in the wheel             cutoff Å  head    trained on
=================== ========== ================================ ========= ======= =====================
``CHGNet-0.3.0``    chgnet     ``chgnet/pretrained/0.3.0``      6         –       MPtrj (PBE/PBE+U)
``CHGNet-0.2.0``    chgnet     ``chgnet/pretrained/0.2.0``      5         –       MPtrj (PBE/PBE+U)
``CHGNet-r2SCAN``   chgnet     ``chgnet/pretrained/r2scan``     6         –       MP r²SCAN (transfer)
``7net-0``          sevennet   ``SevenNet_0__11Jul2024``        5         –       MPtrj (PBE/PBE+U)
``7net-l3i5``       sevennet   ``SevenNet_l3i5``                5         –       MPtrj (PBE/PBE+U)
``7net-MF-0``       sevennet   ``SevenNet_MF_0``                5         PBE     MPtrj + MP r²SCAN
=================== ========== ================================ ========= ======= =====================

7net-MF-0 is multi-fidelity: it has a PBE and an r²SCAN head; hetflow uses its PBE head (the
paper's level).  Cutoffs were read from the checkpoints (``graph_converter.atom_graph_cutoff``,
``config["cutoff"]``) of chgnet 0.4.2 and sevenn 0.13.0.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MLIPModel", "MODELS", "MLIP_BACKENDS", "BY_BACKEND", "model", "resolve", "choices", "DEFAULT_MLIP"]


@dataclass(frozen=True)
class MLIPModel:
    """One pretrained potential.

    name: canonical ``CalcSpec.method``.  backend: ``"chgnet"`` or ``"sevennet"``.
    weights: CHGNet ``model_name`` or the :mod:`sevenn._const` attribute holding the checkpoint path.
    cutoff: the largest graph cutoff of the model, Å (finite clusters are boxed with images farther
    apart than this).  head: the modal of a multi-fidelity model (None otherwise).
    training: the data set and its level of theory.  aliases: other spellings (lower case).
    """

    name: str
    backend: str
    weights: str
    cutoff: float
    training: str
    head: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How reports name the level: model and training data."""
        head = f", {self.head} head" if self.head else ""
        return f"{self.name} ({self.training}{head}; machine-learned potential)"


MODELS: dict[str, MLIPModel] = {m.name: m for m in (
    MLIPModel("CHGNet-0.3.0", "chgnet", "0.3.0", 6.0, "MPtrj, PBE/PBE+U", aliases=("chgnet", "0.3.0", "chgnet-0.3.0")),
    MLIPModel("CHGNet-0.2.0", "chgnet", "0.2.0", 5.0, "MPtrj, PBE/PBE+U", aliases=("chgnet-0.2.0", "0.2.0")),
    MLIPModel("CHGNet-r2SCAN", "chgnet", "r2scan", 6.0, "MP r²SCAN, transfer-learned from MPtrj",
              aliases=("chgnet-r2scan", "r2scan")),
    MLIPModel("7net-0", "sevennet", "SEVENNET_0_11Jul2024", 5.0, "MPtrj, PBE/PBE+U",
              aliases=("sevennet", "sevennet-0", "7net", "7net-0", "7net-0_11jul2024")),
    MLIPModel("7net-l3i5", "sevennet", "SEVENNET_l3i5", 5.0, "MPtrj, PBE/PBE+U", aliases=("7net-l3i5", "sevennet-l3i5")),
    MLIPModel("7net-MF-0", "sevennet", "SEVENNET_MF_0", 5.0, "MPtrj + MP r²SCAN, multi-fidelity", head="PBE",
              aliases=("7net-mf-0", "sevennet-mf-0", "7net-mf-0-pbe")),
)}

#: backends of the catalogue, in order
MLIP_BACKENDS: tuple[str, ...] = ("chgnet", "sevennet")

#: the potential of ``--level mlip`` when none is named: CHGNet's r²SCAN model, the closest to the
#: published Tables S1 and S2 of those measured (bench/bench_potentials.py, BENCHMARKS.md §11: MAE 0.74
#: and 0.77 kcal/mol per halide against 1.75–5.87 and 2.33–5.67 for the others on the quick model)
DEFAULT_MLIP = "chgnet-r2scan"

_BY_ALIAS: dict[str, str] = {}
for _m in MODELS.values():
    _BY_ALIAS[_m.name.lower()] = _m.name
    for _a in _m.aliases:
        _BY_ALIAS[_a] = _m.name


def resolve(name: str) -> MLIPModel | None:
    """The model a user's spelling names (case-insensitive; ``chgnet`` = CHGNet-0.3.0,
    ``sevennet`` = 7net-0), or None."""
    key = _BY_ALIAS.get(str(name).strip().lower())
    return None if key is None else MODELS[key]


def model(name: str) -> MLIPModel:
    """The model of a canonical method name or alias; KeyError when unknown."""
    m = resolve(name)
    if m is None:
        raise KeyError(name)
    return m


#: the models of each backend, in catalogue order (the first is the backend's default)
BY_BACKEND: dict[str, tuple[MLIPModel, ...]] = {}
for _m in MODELS.values():
    BY_BACKEND[_m.backend] = BY_BACKEND.get(_m.backend, ()) + (_m,)


def methods(backend: str) -> tuple[str, ...]:
    """Canonical method names of one backend (the first is its default)."""
    return tuple(m.name for m in BY_BACKEND.get(backend, ()))


def choices() -> tuple[str, ...]:
    """The names the CLI offers for ``--mlip`` / ``--prerelax``: lower-case model names, with the
    historical ``chgnet`` and ``sevennet`` (CHGNet-0.3.0, 7net-0) first."""
    return ("chgnet", "sevennet", *(m.name.lower() for m in MODELS.values()))
