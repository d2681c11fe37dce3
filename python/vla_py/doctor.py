"""Prints the interpreter and the installed versions of the locked packages as one JSON line."""

import json
import sys
from importlib import metadata
from pathlib import Path


def locked_packages(lock_file: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lock_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins


def main() -> int:
    lock_file = Path(__file__).resolve().parent.parent / "requirements.lock"
    installed: dict[str, str | None] = {}
    for name in locked_packages(lock_file):
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed[name] = None
    print(json.dumps({"python": sys.version.split()[0], "executable": sys.executable, "packages": installed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
