"""FreeRADIUS as a lab process: write its private config, check it, give the command line."""
from __future__ import annotations

import subprocess
from pathlib import Path


class RadiusConfigError(RuntimeError):
    pass


class FreeRadius:
    def __init__(self, run_dir: str | Path, files: dict[str, str]) -> None:
        self.dir = Path(run_dir)
        self.files = files

    def write(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for name, content in self.files.items():
            (self.dir / name).write_text(content)

    def check(self) -> None:
        r = subprocess.run(["freeradius", "-C", "-d", str(self.dir)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RadiusConfigError(f"FreeRADIUS rejected its config in {self.dir}:\n{(r.stdout + r.stderr)[-2000:]}")

    def argv(self) -> list[str]:
        """Foreground, logging to stdout (the lab's log file): stopped by its recorded PID."""
        return ["freeradius", "-f", "-l", "stdout", "-d", str(self.dir)]
