"""`cityloop catalog ...` as a user runs it, through the real entry point, against ``db``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook

from cityloop.cli import main
from cityloop.cli_support import use_database
from cityloop.db.engine import Database

YUNCHENG = Path(__file__).parents[2] / "unit" / "catalog" / "yuncheng-case-standard.xlsx"


@pytest.fixture
def cli(db: Database, capsys: pytest.CaptureFixture[str]) -> Iterator[object]:
    use_database(db)
    try:
        yield None
    finally:
        use_database(None)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `cityloop catalog <args>`; return (exit code, stdout, stderr)."""
    code = 0
    try:
        main(["catalog", *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_import_prints_the_counts_per_family(
    cli: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "import", str(YUNCHENG))
    assert code == 0
    assert "部件 (component): 5 major classes, 92 minor classes, 375 criterion rows" in out
    assert "事件 (event): 6 major classes, 98 minor classes, 144 criterion rows" in out
    assert "classes: 97 added" in out and "criterion rows: 375 added" in out
    code, out, _ = run(capsys, "import", str(YUNCHENG))
    assert code == 0 and out.count("no changes") == 2


def test_import_dry_run_changes_nothing(cli: object, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "import", "--dry-run", str(YUNCHENG))
    assert code == 0 and "dry run: nothing was changed" in out
    code, out, _ = run(capsys, "list")
    assert out.strip() == "the catalog is empty"


def test_load_defaults_twice_says_nothing_changed(
    cli: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "load-defaults")
    assert code == 0 and out.startswith("loaded the default catalog")
    code, out, _ = run(capsys, "load-defaults")
    assert code == 0
    assert out.strip() == "the default catalog is already loaded; nothing changed"


def test_load_defaults_over_a_city_catalog_needs_replace(
    cli: object, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "import", str(YUNCHENG))
    code, _, err = run(capsys, "load-defaults")
    assert code == 2 and err.startswith("error: ") and "--replace" in err
    code, out, _ = run(capsys, "load-defaults", "--replace")
    assert code == 0 and "retired" in out


def test_export_then_import_changes_nothing(
    cli: object, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "import", str(YUNCHENG))
    target = tmp_path / "catalog.xlsx"
    code, out, _ = run(capsys, "export", str(target))
    assert code == 0 and target.is_file()
    assert "部件 (component): 5 major classes, 92 minor classes, 375 criterion rows" in out
    code, out, _ = run(capsys, "import", str(target))
    assert code == 0 and out.count("no changes") == 2


def test_list_and_show(cli: object, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "import", str(YUNCHENG))
    code, out, _ = run(capsys, "list", "--family", "部件", "--query", "井盖")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0] == "部件\t0101\t上水井盖\t01 公用设施\t4 rows"
    assert all("井盖" in line for line in lines)
    code, out, _ = run(capsys, "list", "--query", "爱心")
    assert out.strip() == "部件\t0199\t爱心驿站\t01 公用设施\t6 rows [extension]"
    code, out, _ = run(capsys, "show", "0122", "--family", "event")
    assert code == 0
    assert out.splitlines()[0] == "事件 0122 非法伐树 — major class 01 市容环境"
    assert "处置时限: 1紧急工作时制止" in out


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["show", "0999", "--family", "event"], "no event (事件) minor class with code 0999"),
        (["show", "0101", "--family", "things"], "unknown family 'things'"),
        (["list", "--family", "things"], "unknown family 'things'"),
        (["import", "/no/such/file.xlsx"], "file not found: /no/such/file.xlsx"),
    ],
)
def test_bad_input_is_one_sentence(
    cli: object, capsys: pytest.CaptureFixture[str], args: list[str], sentence: str
) -> None:
    run(capsys, "load-defaults")
    code, _, err = run(capsys, *args)
    assert code == 2
    assert err.startswith("error: ") and sentence in err


def test_files_that_are_not_catalogs_are_one_sentence(
    cli: object, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = tmp_path / "catalog.txt"
    text.write_text("not a workbook")
    code, _, err = run(capsys, "import", str(text))
    assert code == 2 and "not an Excel workbook" in err
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"PK\x03\x04 broken zip")
    code, _, err = run(capsys, "import", str(fake))
    assert code == 2 and "cannot be read as an .xlsx workbook" in err
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "电话"])
    other = tmp_path / "contacts.xlsx"
    book.save(other)
    code, _, err = run(capsys, "import", str(other))
    assert code == 2 and "has no catalog sheet" in err
    code, _, err = run(capsys, "import", str(tmp_path))
    assert code == 2 and "directory" in err
    code, _, err = run(capsys, "export", str(tmp_path / "out.csv"))
    assert code == 2 and ".xlsx" in err


def test_a_workbook_with_bad_rows_lists_them_all_and_imports_nothing(
    cli: object, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "事件"
    for row in [
        ["标题"],
        ["大类代码", "大类名称", "小类代码", "小类名称", "立案条件", "结案条件", "处置时限"],
        ["01", "市容环境", "01", "私搭乱建", "在建", "制止", "2紧急工作日"],
        [None, None, None, None, "已形成", "拆除", "15周"],
        [None, None, "AB", "道路不洁", "散落垃圾", "清理", "2小时"],
        [None, None, "12", "道路不洁", "散落垃圾", "清理", "两小时"],
    ]:
        sheet.append(row)
    path = tmp_path / "bad.xlsx"
    book.save(path)
    code, _, err = run(capsys, "import", str(path))
    assert code == 2
    assert "bad.xlsx was not imported (3 problems; nothing was changed)" in err
    assert "sheet 事件, row 4: " in err and "sheet 事件, row 5: " in err
    assert "sheet 事件, row 6: " in err
    code, out, _ = run(capsys, "list")
    assert out.strip() == "the catalog is empty"


def test_a_unit_mapping_file(
    cli: object, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    units = tmp_path / "units.toml"
    units.write_text('[units]\n"天" = { clock = "calendar", unit = "day" }\n', encoding="utf-8")
    code, _, _ = run(capsys, "import", "--units", str(units), str(YUNCHENG))
    assert code == 0
    broken = tmp_path / "broken.toml"
    broken.write_text("[units\n", encoding="utf-8")
    code, _, err = run(capsys, "import", "--units", str(broken), str(YUNCHENG))
    assert code == 2 and "not valid TOML" in err
    code, _, err = run(capsys, "import", "--units", str(tmp_path / "none.toml"), str(YUNCHENG))
    assert code == 2 and "unit mapping file not found" in err
