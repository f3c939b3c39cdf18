"""The image's file set: every command docker-compose runs imports from what the Dockerfile copies."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _copied_paths() -> list[str]:
    """The repository paths the final stage copies (COPY lines without --from)."""
    final_stage = ROOT.joinpath("Dockerfile").read_text().split("\nFROM ")[-1]
    paths = []
    for line in final_stage.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _destination = line.split()[1:]
            paths += sources
    return paths


def _compose_modules() -> list[str]:
    compose = yaml.safe_load(ROOT.joinpath("docker-compose.yml").read_text())
    modules = []
    for service in compose["services"].values():
        command = service.get("command") or []
        if command[:2] == ["python", "-m"]:
            modules.append(command[2])
    return modules


def test_every_compose_command_imports_from_the_image_file_set(tmp_path: Path) -> None:
    for path in _copied_paths():
        source, target = ROOT / path, tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    modules = _compose_modules()
    assert "scripts.migrate" in modules and "gateway" in modules
    # Import what each entry point imports (a __main__ would start serving), from the copied files
    # alone: the checkout's own folders, which the virtualenv puts on sys.path, are taken off it.
    probe = (
        "import importlib, sys\n"
        f"sys.path = [p for p in sys.path if p not in {[str(ROOT), str(ROOT / 'libs')]!r}]\n"
        f"sys.path[:0] = {[str(tmp_path), str(tmp_path / 'libs'), str(ROOT / 'gen')]!r}\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
    )
    imported = [name for module in modules for name in _imports_of(tmp_path, module)]
    result = subprocess.run(
        [sys.executable, "-c", probe, *imported], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _imports_of(root: Path, module: str) -> list[str]:
    """`module` itself if importing it is harmless, else the modules its __main__ imports."""
    package = root.joinpath(*module.split("."))
    if not package.joinpath("__main__.py").exists():
        return [module]
    tree = ast.parse(package.joinpath("__main__.py").read_text())
    return [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module] + [
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    ]
