"""The "run it yourself" buttons: Binder's environment, Colab's install cell, and the Thebe kernel.

What is checked here, offline: binder/ names the pins of pyproject.toml (torch and torchvision as their
CPU builds) and pip's resolver accepts the file from the repository's root against this environment;
every chapter's first cell is the install cell rendered from _config.yml; that cell, run as Colab would
run it, installs vae_lib from a git+file:// URL into a fresh virtual environment, which can then import
it, and prints a note when the runtime's torch is not the pinned one; and the built pages' launch
buttons point at the repository and notebooks that exist. What cannot be checked offline: that
download.pytorch.org serves the CPU wheels (``make binder-check`` resolves binder/ against the real
indexes, where the network allows), and that mybinder.org and Colab start (no Docker build, no Google).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib.metadata import requires
from pathlib import Path

import jupytext
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CPU_BUILDS = {"torch", "torchvision"}  # from PyTorch's CPU index on Binder, as local versions "+cpu"
TEXT_FILES = sorted((ROOT / "notebooks").glob("*.md"))
HTML = Path(os.environ.get("VAE_BOOK_HTML", ROOT / "_build" / "html")).resolve()

spec = importlib.util.spec_from_file_location("colab_cell", ROOT / "scripts" / "colab_cell.py")
colab_cell = importlib.util.module_from_spec(spec)
spec.loader.exec_module(colab_cell)


def runtime_pins() -> dict[str, str]:
    """pyproject.toml's [project] dependencies: name -> version (every one is pinned with ==)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def binder_lines() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [line.split(" #")[0].strip() for line in lines if line.strip() and not line.startswith("#")]


def binder_pins() -> dict[str, str]:
    pins = {}
    for line in binder_lines():
        if not line.startswith("-"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"binder/requirements.txt: pin {line} exactly"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def clean_pip_environment() -> dict[str, str]:
    """This process's environment without pip's settings, and with no pip configuration file."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    environment["PIP_CONFIG_FILE"] = os.devnull
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return environment


# ---- Binder ---------------------------------------------------------------------------------------------


def test_binder_folder_holds_only_what_repo2docker_should_read() -> None:
    # An environment.yml in binder/ would win over requirements.txt (repo2docker's conda buildpack).
    assert sorted(path.name for path in BINDER.iterdir()) == ["requirements.txt", "runtime.txt"]


def test_binder_python_is_the_environment_yml_python() -> None:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python="))
    version = conda_python.removeprefix("python=")
    assert (BINDER / "runtime.txt").read_text().strip() == f"python-{version}"
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert Version(version) in SpecifierSet(requires_python)


def test_binder_pins_the_packages_and_versions_of_pyproject() -> None:
    pins, binder = runtime_pins(), binder_pins()
    assert set(binder) == set(pins), f"binder/requirements.txt names {sorted(binder)}, pyproject {sorted(pins)}"
    for name, version in binder.items():
        if name in CPU_BUILDS:
            assert Version(version).public == pins[name] and Version(version).local == "cpu", (name, version)
        else:
            assert version == pins[name], (name, version, pins[name])
        # What pip checks when it installs vae_lib (whose metadata says torch==2.14.1) next to the CPU build.
        assert Version(version) in SpecifierSet(f"=={pins[name]}")


def test_binder_takes_pytorch_from_its_cpu_index_and_installs_the_library() -> None:
    options = [line for line in binder_lines() if line.startswith("-")]
    assert options == [f"--extra-index-url {PYTORCH_CPU_INDEX}", "-e ."]


def test_the_cpu_builds_satisfy_torchvisions_own_pin_of_torch() -> None:
    torch_pin = binder_pins()["torch"]
    for line in requires("torchvision") or []:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == "torch" and requirement.marker is None:
            assert Version(torch_pin) in requirement.specifier, f"torchvision needs {line}, Binder has {torch_pin}"


def pip_would_install(requirements: Path, options: list[str], report: Path) -> dict[str, str]:
    """Run pip's resolver (``--dry-run``) from the repository's root, as repo2docker runs pip, with no pip
    configuration of this machine: the distributions it would install, name -> version."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", *options]
        + ["--report", str(report), "-r", str(requirements)],
        cwd=ROOT,
        env=clean_pip_environment(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    install = json.loads(report.read_text())["install"]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in install}


def test_pip_resolves_the_binder_requirements_offline(tmp_path: Path) -> None:
    """Every pin, with its own dependencies, is satisfied by this environment (the CPU builds replaced by
    the builds installed here, of the same version), and pip reads the file's options and "-e ." from the
    root: with no index and no download, the library is the one thing left to install."""
    public = tmp_path / "requirements.txt"
    public.write_text((BINDER / "requirements.txt").read_text().replace("+cpu", ""))
    installs = pip_would_install(public, ["--no-index", "--no-build-isolation"], tmp_path / "report.json")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert installs == {"vae-lib": version}


@pytest.mark.skipif(
    os.environ.get("VAE_BINDER_ONLINE") != "1", reason="needs PyPI and download.pytorch.org: make binder-check"
)
def test_binder_resolves_against_pypi_and_the_pytorch_cpu_index(tmp_path: Path) -> None:
    """Opt-in (make binder-check): the resolution Binder will do, on this machine's platform."""
    versions = pip_would_install(BINDER / "requirements.txt", ["--ignore-installed"], tmp_path / "report.json")
    for name, version in binder_pins().items():
        assert versions[name] == version
    cuda = [name for name in versions if name.startswith("nvidia-") or name == "triton"]
    assert not cuda, f"Binder would install CUDA packages: {cuda}"


# ---- Colab ----------------------------------------------------------------------------------------------


def test_the_install_url_is_the_repository_of_config_yml() -> None:
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    assert colab_cell.install_url() == f"git+{repository['url']}@{repository['branch']}"
    assert all(len(line) <= 77 for line in colab_cell.render(colab_cell.install_url()).splitlines())


@pytest.mark.parametrize("text_file", TEXT_FILES, ids=lambda p: p.stem)
def test_every_chapter_starts_with_the_rendered_install_cell(text_file: Path) -> None:
    cell = colab_cell.install_cell(jupytext.read(text_file))
    assert cell.metadata.get("tags") == ["remove-cell"]
    assert cell.source == colab_cell.render(colab_cell.install_url()), f"{text_file.name}: run `make colab-cells`"


def colab_like_site(tmp_path: Path) -> Path:
    """The packages of this environment as Colab's preinstalled ones, pip included: a folder of links to
    everything in site-packages except vae_lib (its .pth files would not run from there anyway)."""
    site = tmp_path / "preinstalled"
    site.mkdir(parents=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not re.match(r"(vae_lib|__editable__)", entry.name) and entry.suffix != ".pth":
            (site / entry.name).symlink_to(entry)
    return site


def test_the_colab_cell_installs_vae_lib_from_a_git_url_into_a_fresh_environment(tmp_path: Path) -> None:
    """The chapters' install cell, with the URL of this repository's commit, run as in Colab: a fresh
    interpreter with the packages already there, google.colab imported. pip runs with no index and the
    build backend from the environment: the test downloads nothing."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the book")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    commit = head.stdout.strip()
    venv = tmp_path / "venv"
    # Without pip of its own: Python 3.11's bundled pip (23.2) rejects "name @ git+file:///path" URLs.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Colab's runtime has an older torch than the pin: a dist-info of torch 2.8.0 found before the real one.
    older = tmp_path / "older-torch"
    (older / "torch-2.8.0+cu126.dist-info").mkdir(parents=True)
    (older / "torch-2.8.0+cu126.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: torch\nVersion: 2.8.0+cu126\n"
    )
    (Path(purelib) / "colab_preinstalled.pth").write_text(f"{older}\n{colab_like_site(tmp_path)}\n")

    cell = tmp_path / "install_cell.py"
    cell.write_text(colab_cell.render(f"git+file://{ROOT}@{commit}"))
    environment = clean_pip_environment() | {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"}  # "0": no isolation
    as_colab = "import sys, types; sys.modules['google.colab'] = types.ModuleType('google.colab'); "
    as_colab += f"exec(open({str(cell)!r}).read())"

    def run_python(code: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [python, "-c", code], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
        )

    run = run_python(as_colab)
    assert run.returncode == 0, run.stdout + run.stderr
    pin = next(line for line in requires("vae_lib") if line.startswith("torch=="))
    assert f"Note: this runtime has torch 2.8.0+cu126; the book's outputs come from {pin}" in run.stdout

    # Without the older torch, the installed library imports, from the fresh environment, with its metadata.
    (Path(purelib) / "colab_preinstalled.pth").write_text(f"{colab_like_site(tmp_path / 'again')}\n")
    check = (
        "import json, vae_lib, torch\n"
        "from importlib.metadata import distribution\n"
        "model = vae_lib.VAE(4, 2, (8,))\n"
        "print(json.dumps({'file': vae_lib.__file__, 'version': distribution('vae_lib').version,\n"
        "    'url': json.loads(distribution('vae_lib').read_text('direct_url.json')),\n"
        "    'images': list(model.sample(3).shape)}))\n"
    )
    imported = run_python(check)
    assert imported.returncode == 0, imported.stderr
    facts = json.loads(imported.stdout.splitlines()[-1])
    assert facts["file"].startswith(str(venv)), f"vae_lib came from {facts['file']}, not the fresh environment"
    assert facts["version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert facts["url"]["url"] == f"file://{ROOT}" and facts["url"]["vcs_info"]["commit_id"] == commit
    assert facts["images"] == [3, 4]
    rerun = run_python(as_colab)
    assert rerun.returncode == 0 and "Note:" not in rerun.stdout, rerun.stdout + rerun.stderr


# ---- The built pages' buttons ---------------------------------------------------------------------------


def chapter_page(stem: str) -> str:
    page = HTML / "notebooks" / f"{stem}.html"
    if not page.is_file():  # a reader's machine may test without building; CI must not
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(f"no built page {page}")
    return page.read_text()


@pytest.mark.parametrize("text_file", TEXT_FILES, ids=lambda p: p.stem)
def test_launch_buttons_open_this_notebook_in_binder_and_colab_and_thebe_uses_binder(text_file: Path) -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    owner_repo = config["repository"]["url"].removeprefix("https://github.com/")
    branch = config["repository"]["branch"]
    notebook = text_file.with_suffix(".ipynb").relative_to(ROOT).as_posix()
    assert (ROOT / notebook).is_file()
    page = chapter_page(text_file.stem)
    binder = f"{config['launch_buttons']['binderhub_url']}/v2/gh/{owner_repo}/{branch}?urlpath=lab/tree/{notebook}"
    colab = f"{config['launch_buttons']['colab_url']}/github/{owner_repo}/blob/{branch}/{notebook}"
    assert f'href="{binder}"' in page and f'href="{colab}"' in page
    # Thebe asks mybinder.org (its default) for a kernel built from the same repository and branch: binder/.
    thebe = re.search(r'<script type="text/x-thebe-config">(.*?)</script>', page, re.DOTALL)
    assert config["launch_buttons"]["thebe"] is True and thebe
    assert f'repo: "{owner_repo}"' in thebe.group(1) and f'ref: "{branch}"' in thebe.group(1)
