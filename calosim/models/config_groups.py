"""Configurations made of groups: the published architecture, the published training, and each addition
beyond the publication as a group of its own (a frozen dataclass owning its fields and their validation), None
when off. A model type's config is a frozen dataclass of ``name`` and its groups that inherits
:class:`GroupedConfig` and declares

    GROUPS          {key: Group class}, in order; "architecture" and "training" are always present and hold
                    latent_dim and batch_size, epochs, energy_range (what the loop reads of every config)
    FIXED           the groups always present (default: architecture and training; a type may add e.g. units)
    FLAT_NAMES      {flat name: (group key, field or None)}: the names of the type's configs before the groups,
                    still read (older model files and config files); field None: the name only switches
    SWITCHED_OFF    {flat name: value}: at this value the name switches its group off, at any other on
    NEUTRAL         {flat name: value}: at this value the name leaves an absent group absent (e.g. a scale 1)

Dicts and config files hold a table per group: ``{"training": {"lr": 1e-4}, "occupancy": {"weight": 10},
"lr_decay": None}``; a table switches its group on (fields not given take the group's defaults), None or
False switches it off. Flat names and tables may be mixed (flat names apply first).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from calosim.errors import ConfigError

FIXED_GROUPS = ("architecture", "training")


class Group:
    """A frozen dataclass of a few fields, built from a dict with unknown fields rejected."""

    label: ClassVar[str] = ""  # the config key that holds the group

    @classmethod
    def from_dict(cls, d: dict):
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.label}: expected a table of fields, got {d!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{cls.label}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError(f"{cls.label}: {exc}") from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def _check_energy_range(self) -> None:
        """A group with an ``energy_range`` field (GeV, None: the training data's): as floats, 0 < lo < hi."""
        if self.energy_range is not None:
            object.__setattr__(self, "energy_range", tuple(float(x) for x in self.energy_range))
            lo, hi = self.energy_range
            self._require(0 < lo < hi, f"energy_range must be 0 < lo < hi GeV, got {self.energy_range}")

    def _require(self, condition: bool, message: str) -> None:
        if not condition:
            raise ConfigError(f"{self.label}: {message}")


def _json_ready(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


class GroupedConfig:
    """to_dict / from_dict / replace for configs made of groups (see the module docstring)."""

    GROUPS: ClassVar[dict] = {}
    FIXED: ClassVar[tuple] = FIXED_GROUPS
    FLAT_NAMES: ClassVar[dict] = {}
    SWITCHED_OFF: ClassVar[dict] = {}
    NEUTRAL: ClassVar[dict] = {}

    # what the loop and the sampler read of every model type's config
    @property
    def latent_dim(self) -> int:
        return self.architecture.latent_dim

    @property
    def batch_size(self) -> int:
        return self.training.batch_size

    @property
    def epochs(self) -> int:
        return self.training.epochs

    @property
    def energy_range(self):
        return self.training.energy_range

    def to_dict(self) -> dict:
        out = {"name": self.name}
        for key in self.GROUPS:
            group = getattr(self, key)
            out[key] = None if group is None else _json_ready(group.to_dict())
        return out

    @classmethod
    def from_dict(cls, d: dict):
        """A config from its grouped dict, from flat pre-group names, or from a mix (flat names first)."""
        if not isinstance(d, dict):
            raise ConfigError(f"expected a table of config fields, got {d!r}")
        grouped = {k: v for k, v in d.items() if k in cls.GROUPS}
        flat = {k: v for k, v in d.items() if k in cls.FLAT_NAMES}
        unknown = sorted(set(d) - set(grouped) - set(flat) - {"name"})
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known: name, the groups "
                              f"{', '.join(cls.GROUPS)} (or the flat names {', '.join(sorted(cls.FLAT_NAMES))})")
        tables = {key: ({} if key in cls.FIXED else None) for key in cls.GROUPS}
        tables = cls._apply_flat(tables, flat)
        for key, value in grouped.items():
            if value is None or value is False:
                if key in cls.FIXED:
                    raise ConfigError(f"{key}: cannot be switched off")
                tables[key] = None
            elif isinstance(value, dict):
                tables[key] = {**(tables[key] or {}), **value}
            else:
                raise ConfigError(f"{key}: expected a table of fields, or false / null to switch it off")
        groups = {key: None if t is None else cls.GROUPS[key].from_dict(t) for key, t in tables.items()}
        default_name = next(f.default for f in dataclasses.fields(cls) if f.name == "name")
        return cls(name=str(d.get("name", default_name)), **groups)

    def replace(self, **changes):
        """A copy with ``changes``: flat names (``epochs=3``, ``lr_g=1e-4``) and group tables (``occupancy=
        {"weight": 10}`` merged into the current group, ``lr_decay=None`` off)."""
        current = self.to_dict()
        flat = {k: v for k, v in changes.items() if k in self.FLAT_NAMES}
        merged = dict(current)
        for key, value in changes.items():
            if key in flat:
                continue
            if key in self.GROUPS and isinstance(value, dict) and current.get(key) is not None:
                merged[key] = {**current[key], **value}
            else:
                merged[key] = value
        tables = self._apply_flat({k: v for k, v in merged.items() if k != "name"}, flat)
        return type(self).from_dict({"name": merged.get("name", self.name), **tables})

    @classmethod
    def _apply_flat(cls, tables: dict, flat: dict) -> dict:
        """Group tables with flat pre-group fields applied: first the names that switch a group off (at their
        SWITCHED_OFF value) or on (at any value other than that or their NEUTRAL value), then every field of a
        group that is on."""
        tables = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tables.items()}
        creates = {**cls.NEUTRAL, **cls.SWITCHED_OFF}  # name: the value at which it switches nothing on
        for name, value in flat.items():
            group, field = cls.FLAT_NAMES[name]
            if group in cls.FIXED:
                tables[group][field] = value
            elif name in cls.SWITCHED_OFF and value == cls.SWITCHED_OFF[name]:
                tables[group] = None
            elif name in creates and value != creates[name]:
                tables[group] = tables.get(group) or {}
        for name, value in flat.items():
            group, field = cls.FLAT_NAMES[name]
            if group not in cls.FIXED and field is not None and tables.get(group) is not None:
                tables[group][field] = value
        return tables
