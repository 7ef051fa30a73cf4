"""The dispatch principle: 部件先属主后属地，事件先属地后属主, and 属地兜底."""

from __future__ import annotations

from cityloop.grid.routing import (
    Basis,
    Route,
    RouteFacts,
    RuleFacts,
    Scope,
    TerritorialLevel,
    best_rule,
    decide,
)

OWNER, RULE_DEPT, CLASS_OWNER, SUB, COMM = 10, 20, 30, 40, 50
RULE = RuleFacts(
    id=1, department_id=RULE_DEPT, priority=0, scope=Scope.DISTRICT, minor_specific=True
)


def facts(**kw: object) -> RouteFacts:
    base: dict[str, object] = {"family": None, "subdistrict_id": SUB, "community_id": COMM}
    base.update(kw)
    return RouteFacts(**base)  # type: ignore[arg-type]


def test_a_component_goes_to_its_owner_before_rules_class_and_territory() -> None:
    got = decide(
        facts(
            family="component", component_owner_id=OWNER, rules=[RULE], class_owner_id=CLASS_OWNER
        )
    )
    assert got == Route(OWNER, Basis.COMPONENT_OWNER)


def test_a_known_component_routes_to_its_owner_even_before_classification() -> None:
    assert decide(facts(component_owner_id=OWNER)).basis is Basis.COMPONENT_OWNER


def test_a_component_without_a_known_owner_takes_a_rule_then_the_class_owner() -> None:
    assert decide(facts(family="component", rules=[RULE], class_owner_id=CLASS_OWNER)) == Route(
        RULE_DEPT, Basis.RULE, 1
    )
    assert decide(facts(family="component", class_owner_id=CLASS_OWNER)) == Route(
        CLASS_OWNER, Basis.CLASS_OWNER
    )


def test_a_component_with_no_owner_falls_to_the_territory() -> None:
    assert decide(facts(family="component")) == Route(SUB, Basis.TERRITORY)


def test_an_event_goes_to_the_territory_before_the_class_owner() -> None:
    assert decide(facts(family="event", class_owner_id=CLASS_OWNER)) == Route(SUB, Basis.TERRITORY)


def test_a_rule_overrides_the_territory_for_an_event() -> None:
    assert decide(facts(family="event", rules=[RULE])) == Route(RULE_DEPT, Basis.RULE, 1)


def test_an_event_outside_any_territory_takes_the_class_owner() -> None:
    got = decide(
        facts(family="event", class_owner_id=CLASS_OWNER, subdistrict_id=None, community_id=None)
    )
    assert got == Route(CLASS_OWNER, Basis.CLASS_OWNER)


def test_unclassified_reports_fall_to_the_territory_and_nothing_is_guessed_beyond() -> None:
    assert decide(facts(rules=[RULE])) == Route(SUB, Basis.TERRITORY)
    assert decide(facts(subdistrict_id=None, community_id=None)) == Route(None, Basis.NONE)


def test_the_territorial_level_is_the_citys_choice_with_the_other_level_as_fallback() -> None:
    community = TerritorialLevel.COMMUNITY
    assert decide(facts(family="event", territorial_level=community)).department_id == COMM
    assert decide(facts(family="event", community_id=None, territorial_level=community)) == Route(
        SUB, Basis.TERRITORY
    )
    assert decide(facts(family="event", subdistrict_id=None)).department_id == COMM


def test_the_best_rule_is_priority_then_narrowest_area_then_class_then_oldest() -> None:
    def rule(id_: int, priority: int, scope: Scope, specific: bool = True) -> RuleFacts:
        return RuleFacts(id_, 100 + id_, priority, scope, specific)

    assert best_rule([]) is None
    district, cells = rule(1, 0, Scope.DISTRICT), rule(2, 0, Scope.CELLS)
    assert best_rule([district, cells]) == cells
    assert best_rule([cells, rule(3, 1, Scope.DISTRICT)]).id == 3  # type: ignore[union-attr]
    family_wide = rule(4, 0, Scope.COMMUNITY, specific=False)
    specific = rule(5, 0, Scope.COMMUNITY)
    assert best_rule([family_wide, specific]) == specific
    assert best_rule([rule(7, 0, Scope.SUBDISTRICT), rule(6, 0, Scope.SUBDISTRICT)]).id == 6  # type: ignore[union-attr]
