"""The top bar's fullness (render.nav_length): the brand name counts with the menu, so an
English menu as long as a Chinese one that fits still folds the brand name away."""

from __future__ import annotations

from cityloop.web.render import NavItem, nav_length

ZH_BRAND = "数字城管平台"
EN_BRAND = "City Loop urban management"


def menu(*labels: str) -> list[NavItem]:
    return [NavItem(f"/{i}", label, False) for i, label in enumerate(labels)]


LEADER_ZH = menu("工作台", "案件查询", "派遣调度台", "部门视图", "指挥大屏", "整改台账", "考评")
LEADER_EN = menu(
    "Workbench",
    "Search",
    "Dispatch board",
    "Department view",
    "Dashboard",
    "Ledgers",
    "Evaluation",
)


def test_a_leaders_chinese_menu_fits_whole() -> None:
    assert nav_length(LEADER_ZH, ZH_BRAND) == 0


def test_a_leaders_english_menu_hides_the_brand_name() -> None:
    # 84 half-ems of menu fit beside the short Chinese brand, not beside the English one
    # (measured in Chromium at 1280 px: the language switch wrapped to a second line).
    assert nav_length(LEADER_EN, ZH_BRAND) == 1
    assert nav_length(LEADER_EN, EN_BRAND) == 2


def test_a_short_menu_fits_in_both_languages() -> None:
    assert nav_length(menu("工作台", "新建上报", "案件查询", "整改台账"), ZH_BRAND) == 0
    assert nav_length(menu("Workbench", "New report", "Search", "Ledgers"), EN_BRAND) == 0
