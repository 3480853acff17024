"""The repository's distributions, built and installed for `tests/dists`: every wheel (`python -m
build`), and a fresh virtual environment per client holding its wheel alone (with what it depends on,
from the package index) and pytest.

`make test` runs `python tests/support/dists.py .dists` beside the linters (their second core is
idle), and the SQLite and PostgreSQL runs use what it built; a run without `CONSENTRY_DISTS_DIR`
builds in a temporary folder. `ensure` takes a lock, so two test workers never build at once.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "VERSION").read_text().strip()
PROJECTS = {
    "consentry": ROOT,
    "consentry-audit": ROOT / "clients" / "auditor",
    "consentry-brand": ROOT / "clients" / "brand",
    "consentry-example-grocery": ROOT / "clients" / "examples" / "grocery",
}
# What each fresh environment holds besides pytest: one client wheel and what it depends on.
ENVIRONMENTS = {
    "brand": ["consentry-brand"],
    "audit": ["consentry-audit"],
    "example": ["consentry-brand", "consentry-example-grocery"],
}


@dataclass(frozen=True)
class Built:
    wheels: dict[str, Path]
    environments: dict[str, Path]  # name → its python


def run(command: list[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"{' '.join(map(str, command))}:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    )
    return done.stdout


def _sources(name: str, into: Path) -> Path:
    """A copy of a project's sources (its linked VERSION read through), so a build leaves nothing in
    the tree: the server's packages alone, or a client's folder without its tests."""
    copy = into / name
    project = PROJECTS[name]
    if name == "consentry":
        copy.mkdir(parents=True)
        for file in ("pyproject.toml", "README.md", "VERSION"):
            shutil.copy(project / file, copy / file)
        for package in ("vault", "broker", "migrations"):
            shutil.copytree(project / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        skip = shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info")
        shutil.copytree(project, copy, ignore=skip)
    return copy


def _wheel(name: str, work: Path, out: Path) -> Path:
    copy = _sources(name, work)
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out / name, copy])
    (wheel,) = (out / name).glob("*.whl")
    return wheel


def _environment(folder: Path, wheels: list[Path]) -> Path:
    """A fresh virtual environment with these wheels, their dependencies from the index, and pytest."""
    run([sys.executable, "-m", "venv", folder])
    python = folder / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *wheels, "pytest>=8.2"])
    return python


def _build(where: Path) -> Built:
    """Every wheel, then the clients' environments, each step in parallel (most of it is waiting)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        building = {name: pool.submit(_wheel, name, where / "src", where / "wheels") for name in PROJECTS}
        wheels = {name: job.result() for name, job in building.items()}
        making = {
            env: pool.submit(_environment, where / "venvs" / env, [wheels[name] for name in names])
            for env, names in ENVIRONMENTS.items()
        }
        return Built(wheels, {env: job.result() for env, job in making.items()})


def ensure(where: Path) -> Built:
    """What `where` holds, built first if it holds nothing yet (once, under a lock)."""
    ready = where / "built.json"
    where.mkdir(parents=True, exist_ok=True)
    with (where / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            result = _build(where)
            paths = {"wheels": result.wheels, "environments": result.environments}
            ready.write_text(json.dumps({k: {n: str(p) for n, p in v.items()} for k, v in paths.items()}))
    kept = json.loads(ready.read_text())
    return Built(
        {n: Path(p) for n, p in kept["wheels"].items()}, {n: Path(p) for n, p in kept["environments"].items()}
    )


if __name__ == "__main__":
    built = ensure(Path(sys.argv[1]).resolve())
    print(f"built {len(built.wheels)} wheels and {len(built.environments)} environments in {sys.argv[1]}")
