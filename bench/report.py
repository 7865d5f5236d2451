"""Write a benchmark's figures into docs/benchmarks.md, with the machine, date and command that produced them."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Figures measured by the scripts under `bench/`; each section is replaced when re-run with `--record`.\n"
)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {java}"
    )


def record_section(title: str, command: str, table_rows: list[str]) -> None:
    """Replace (or append) the ``## title`` section of docs/benchmarks.md."""
    section = (
        f"## {title}\n\n"
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n- machine: {machine()}\n- command: `{command}`\n\n"
        "| measure | value |\n| --- | --- |\n" + "\n".join(table_rows) + "\n"
    )
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    BENCHMARKS.parent.mkdir(exist_ok=True)
    BENCHMARKS.write_text(text)
