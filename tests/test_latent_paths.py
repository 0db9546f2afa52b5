"""vae_lib.latent_paths: the straight and the spherical path, and the same spherical path as the explorer's.

The latent explorer (book/_static/latent_explorer.js) draws the spherical path in two dimensions with
polar coordinates; chapter 5 uses vl.spherical_path in any dimension. The last test runs the page's own
function in Node.js, where Node is installed, and compares the two.
"""

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import vae_lib as vl

ROOT = Path(__file__).resolve().parent.parent
T = torch.linspace(0, 1, 11, dtype=torch.float64)


def ends(d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, d, generator=generator, dtype=torch.float64))


def angle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.arccos(torch.clamp(u @ v / (u.norm() * v.norm()), -1, 1))


@pytest.mark.parametrize("d", [2, 3, 8, 64])
def test_the_spherical_path_turns_at_a_constant_rate_and_its_norm_changes_linearly(d: int) -> None:
    z_a, z_b = ends(d, seed=d)
    path = vl.spherical_path(z_a, z_b, T)
    torch.testing.assert_close(path[0], z_a)
    torch.testing.assert_close(path[-1], z_b)
    torch.testing.assert_close(path.norm(dim=1), (1 - T) * z_a.norm() + T * z_b.norm())
    turned = torch.stack([angle(z_a, z) for z in path])
    torch.testing.assert_close(turned, T * angle(z_a, z_b))
    # on the great circle: in the plane of the two ends
    basis, _ = torch.linalg.qr(torch.stack([z_a, z_b], 1))
    torch.testing.assert_close(path @ basis @ basis.T, path)


def test_the_straight_path_is_the_chord() -> None:
    z_a, z_b = ends(5, seed=0)
    path = vl.straight_path(z_a, z_b, T)
    torch.testing.assert_close(path[5], (z_a + z_b) / 2)
    torch.testing.assert_close(path[0], z_a)
    torch.testing.assert_close(path[-1], z_b)


def test_ends_at_the_origin_or_in_one_direction() -> None:
    z = torch.tensor([3.0, 4.0], dtype=torch.float64)
    origin = torch.zeros(2, dtype=torch.float64)
    torch.testing.assert_close(vl.spherical_path(origin, z, T), T[:, None] * z)
    torch.testing.assert_close(vl.spherical_path(z, 2 * z, T), vl.straight_path(z, 2 * z, T))
    assert vl.spherical_path(origin, origin, T).abs().max() == 0


def test_bad_ends_are_refused_with_a_reason() -> None:
    z = torch.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="opposite directions"):
        vl.spherical_path(z, -z, torch.linspace(0, 1, 3))
    with pytest.raises(ValueError, match="same shape"):
        vl.spherical_path(z, torch.ones(3), torch.linspace(0, 1, 3))
    with pytest.raises(ValueError, match="1-D tensor of fractions"):
        vl.straight_path(z, z, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="t"):
        vl.straight_path(z, z, torch.tensor([0.0, math.nan]))


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_explorers_spherical_path_is_the_librarys_in_two_dimensions() -> None:
    pairs = [ends(2, seed) for seed in range(20)]
    script = (
        "globalThis.window = {}; globalThis.document = {readyState: 'loading', addEventListener() {}};\n"
        + (ROOT / "book" / "_static" / "latent_explorer.js").read_text()
        + "\nconst pairs = JSON.parse(process.argv[1]), t = JSON.parse(process.argv[2]);\n"
        + "console.log(JSON.stringify(pairs.map(([a, b]) => t.map((s) => "
        + "window.vaeBookLatentExplorer.spherical(a, b, s)))));\n"
    )
    arguments = [json.dumps([[a.tolist(), b.tolist()] for a, b in pairs]), json.dumps(T.tolist())]
    result = subprocess.run(["node", "-e", script, *arguments], capture_output=True, text=True, check=True)
    from_page = torch.tensor(json.loads(result.stdout), dtype=torch.float64)
    from_library = torch.stack([vl.spherical_path(a, b, T) for a, b in pairs])
    torch.testing.assert_close(from_page, from_library)
