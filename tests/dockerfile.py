"""An image built without a container engine, from its Dockerfile's own lines: the files its COPY lines produce, a
fresh virtual environment with only its ``pip install`` line, and its ENV, WORKDIR and CMD to run it.

No Docker engine runs here and the base image needs a registry, so the test reproduces what the image would hold
instead. Only what the Dockerfile says is used: a file it forgets to copy or a package it forgets to install
fails the same way it would in the container.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

UV = Path(sys.executable).parent / "uv"


@dataclass(frozen=True)
class Dockerfile:
    """The instructions of one Dockerfile, continuation lines joined, comments dropped."""

    instructions: list[tuple[str, str]]

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        text = path.read_text().replace("\\\n", " ")
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        return cls([(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines])

    def arguments(self, instruction: str) -> list[str]:
        return [argument for name, argument in self.instructions if name == instruction]

    @property
    def workdir(self) -> str:
        return self.arguments("WORKDIR")[-1]

    def environment(self, root: Path) -> dict[str, str]:
        """Every ENV variable, with the WORKDIR in values moved to ``root``."""
        pairs = [pair.split("=", 1) for argument in self.arguments("ENV") for pair in shlex.split(argument)]
        return {name: value.replace(self.workdir, str(root)) for name, value in pairs}

    def pip_requirements(self) -> list[str]:
        """The requirements of every ``RUN pip install`` line."""
        commands = [shlex.split(argument) for argument in self.arguments("RUN")]
        return [word for command in commands if command[:2] == ["pip", "install"] for word in command[2:]]

    def copy_into(self, root: Path, context: Path) -> None:
        """Copy what every COPY line copies from the build ``context`` into ``root`` (the WORKDIR)."""
        for argument in self.arguments("COPY"):
            *sources, target = argument.split()
            (root / target).mkdir(parents=True, exist_ok=True)
            for source in sources:
                if (context / source).is_dir():
                    shutil.copytree(context / source, root / target, dirs_exist_ok=True)
                else:
                    shutil.copy2(context / source, root / target / Path(source).name)

    def command(self, instruction: str = "CMD") -> list[str]:
        """The exec form of CMD (or of HEALTHCHECK's CMD)."""
        argument = self.arguments(instruction)[-1]
        return json.loads(argument.split(" CMD ", 1)[1] if instruction == "HEALTHCHECK" else argument)


@dataclass(frozen=True)
class Image:
    """The image's file set under ``root`` and its Python environment under ``venv``."""

    dockerfile: Dockerfile
    root: Path
    venv: Path

    def environment(self, overrides: dict[str, str]) -> dict[str, str]:
        """The image's environment (its ENV, its Python first on PATH) with ``overrides``: nothing of the caller's
        virtual environment or project leaks in."""
        path = os.pathsep.join([str(self.venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
        return {"PATH": path, "HOME": str(self.root), "LANG": "C.UTF-8",
                **self.dockerfile.environment(self.root), **overrides}  # fmt: skip


def build(dockerfile_path: Path, context: Path, into: Path) -> Image:
    """The image's files and a fresh virtual environment holding only what its ``pip install`` lines install."""
    dockerfile = Dockerfile.read(dockerfile_path)
    root, venv = into / "app", into / "venv"
    dockerfile.copy_into(root, context)
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, venv], check=True)
    subprocess.run([UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python",
                    *dockerfile.pip_requirements()], check=True)  # fmt: skip
    return Image(dockerfile, root, venv)
