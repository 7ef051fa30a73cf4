"""Which department a case is suggested for: the dispatch principle as a pure function.

DOMAIN.md section 2 [C]: *components go to their owner first, then the territory; events go to
the territory first, then the owner* (部件先属主后属地，事件先属地后属主), and cells with no clear
owner fall to the territorial unit (属地兜底). The service gathers the facts (the located cell's
territory, the component's owner, the matching routing rules, the class's default department
from the filing standard); :func:`decide` applies the order:

* **component** (the case names a component, or its class is a component class):
  the component's owner department → the best matching routing rule → the class's owner (the
  filing standard's default handling department) → the territorial unit.
* **event**: the best matching routing rule (a rule is the city saying "not the territory for
  this class here") → the territorial unit → the class's owner.
* **no class yet** (most intake): the territorial unit.

The best rule is the highest ``priority``; among equals the narrowest area (cells, community,
subdistrict, district), then a rule naming the minor class over one for the whole family, then
the oldest rule. The territorial unit is the subdistrict (街道) by default, or the community
(社区) when the city says so (``GridSettings.territorial_level``) [L]; when the preferred level
has no bound department the other level answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Basis(StrEnum):
    """Why a department was suggested."""

    COMPONENT_OWNER = "component_owner"  # 部件权属单位
    RULE = "rule"  # a routing rule (minor class x area)
    CLASS_OWNER = "class_owner"  # the filing standard's handling unit for the class
    TERRITORY = "territory"  # 属地: subdistrict or community
    NONE = "none"


class Scope(StrEnum):
    """The area a routing rule covers, narrowest first."""

    CELLS = "cells"
    COMMUNITY = "community"
    SUBDISTRICT = "subdistrict"
    DISTRICT = "district"


SCOPE_RANK: dict[Scope, int] = {s: i for i, s in enumerate(Scope)}


class TerritorialLevel(StrEnum):
    SUBDISTRICT = "subdistrict"
    COMMUNITY = "community"


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """A routing rule that matches the case's class and cell."""

    id: int
    department_id: int
    priority: int
    scope: Scope
    minor_specific: bool  # names the minor class (not the whole family)


@dataclass(frozen=True, slots=True)
class RouteFacts:
    family: str | None  # component | event | None (not classified yet)
    component_owner_id: int | None = None
    rules: Sequence[RuleFacts] = field(default_factory=tuple)
    class_owner_id: int | None = None
    subdistrict_id: int | None = None
    community_id: int | None = None
    territorial_level: TerritorialLevel = TerritorialLevel.SUBDISTRICT


@dataclass(frozen=True, slots=True)
class Route:
    department_id: int | None
    basis: Basis
    rule_id: int | None = None


def best_rule(rules: Sequence[RuleFacts]) -> RuleFacts | None:
    """The rule that wins among matching ones (see the module docstring)."""
    if not rules:
        return None
    return min(rules, key=lambda r: (-r.priority, SCOPE_RANK[r.scope], not r.minor_specific, r.id))


def territory(facts: RouteFacts) -> int | None:
    """The territorial unit: the preferred level's department, else the other level's."""
    if facts.territorial_level is TerritorialLevel.COMMUNITY:
        return facts.community_id if facts.community_id is not None else facts.subdistrict_id
    return facts.subdistrict_id if facts.subdistrict_id is not None else facts.community_id


def decide(facts: RouteFacts) -> Route:
    """The suggested department and why (a dispatcher still decides at 派遣)."""
    rule = best_rule(facts.rules)
    local = territory(facts)
    if facts.family == "component" or facts.component_owner_id is not None:
        if facts.component_owner_id is not None:
            return Route(facts.component_owner_id, Basis.COMPONENT_OWNER)
        if rule is not None:
            return Route(rule.department_id, Basis.RULE, rule.id)
        if facts.class_owner_id is not None:
            return Route(facts.class_owner_id, Basis.CLASS_OWNER)
        if local is not None:
            return Route(local, Basis.TERRITORY)
        return Route(None, Basis.NONE)
    if facts.family == "event":
        if rule is not None:
            return Route(rule.department_id, Basis.RULE, rule.id)
        if local is not None:
            return Route(local, Basis.TERRITORY)
        if facts.class_owner_id is not None:
            return Route(facts.class_owner_id, Basis.CLASS_OWNER)
        return Route(None, Basis.NONE)
    if local is not None:
        return Route(local, Basis.TERRITORY)
    return Route(None, Basis.NONE)
