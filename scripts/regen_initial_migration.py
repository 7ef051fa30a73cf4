"""Regenerate the initial migration from the models (only until the first release ships).

Once a release has shipped, write new revisions with `alembic revision --autogenerate`
instead; never rewrite a migration a deployed database has applied.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from cityloop.db import registry
from cityloop.db.engine import make_engine
from cityloop.db.migrate import MIGRATIONS_DIR, alembic_config

APPEND_ONLY = ("audit_entry", "case_event", "ledger_item_event", "exchange_received_event")


def main() -> None:
    for old in (MIGRATIONS_DIR / "versions").glob("0001_*.py"):
        old.unlink()
    registry.load_all_models()
    url = "sqlite:///" + str(Path(tempfile.mkdtemp()) / "empty.db")
    with make_engine(url).begin() as conn:
        command.revision(
            alembic_config(conn), message="initial schema", autogenerate=True, rev_id="0001"
        )
    path = next((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
    text = path.read_text()
    text = text.replace(
        "import cityloop.db.base\n",
        "import cityloop.db.base\n"
        "from cityloop.db.immutable import drop_append_only, make_append_only\n",
        1,
    )
    text = re.sub(r"Create Date: .*\n", "", text)
    up = "".join(f"    make_append_only({t!r})\n" for t in APPEND_ONLY)
    down = "".join(f"    drop_append_only({t!r})\n" for t in reversed(APPEND_ONLY))
    text = text.replace(
        "    # ### end Alembic commands ###\n\n\ndef downgrade",
        f"    # ### end Alembic commands ###\n{up}\n\ndef downgrade",
        1,
    )
    text = text.replace("def downgrade() -> None:\n", f"def downgrade() -> None:\n{down}", 1)
    path.write_text(text)
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(path)], check=True)
    subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "-q", str(path)], check=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
