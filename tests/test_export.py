"""vae_lib.export: the decoder written out for the page equals the decoder PyTorch runs.

``forward`` below is the page's algorithm (book/_static/latent_explorer.js) in NumPy: float32 weights read
into float64, layers applied in float64. The browser test checks the JavaScript itself against the same
reference outputs.
"""

import base64
import json

import numpy as np
import pytest
import torch
from torch import nn

import vae_lib as vl
from vae_lib.export import FORMAT, MIME_TYPE

FUNCTIONS = {
    "relu": lambda a: np.maximum(a, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "identity": lambda a: a,
}


def array(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype).copy()


def forward(payload: dict, z: np.ndarray) -> np.ndarray:
    h = z
    for layer in payload["layers"]:
        weight = array(layer["weight"], "<f4").astype(np.float64).reshape(layer["outputs"], layer["inputs"])
        h = FUNCTIONS[layer["activation"]](h @ weight.T + array(layer["bias"], "<f4").astype(np.float64))
    return h


def trained_looking_vae(likelihood: str = "bernoulli", hidden_dims: tuple[int, ...] = (256,)) -> vl.VAE:
    """A VAE with weights as large as trained ones (logits of tens of nats), where float32 rounding shows."""
    vl.seed_everything(3)
    vae = vl.VAE(64, 2, hidden_dims, likelihood=likelihood, sigma=0.5)
    with torch.no_grad():
        for parameter in vae.decoder.parameters():
            parameter.mul_(4.0)
    return vae


def export(vae: vl.VAE, **kwargs: object) -> vl.DecoderExport:
    points = torch.randn(50, vae.latent_dim, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(50) % 10
    return vl.export_decoder(vae.decoder, points, labels, (8, 8), name="test-2d", **kwargs)


@pytest.mark.parametrize(
    ("likelihood", "hidden_dims", "functions"),
    [("bernoulli", (256,), ["relu", "sigmoid"]), ("gaussian", (32, 16), ["relu", "relu", "identity"])],
)
def test_the_exported_layers_compute_the_reference_outputs(likelihood, hidden_dims, functions) -> None:
    vae = trained_looking_vae(likelihood, hidden_dims)
    payload = export(vae).payload
    assert payload["format"] == FORMAT and payload["latent_dim"] == 2 and payload["image_shape"] == [8, 8]
    assert [layer["activation"] for layer in payload["layers"]] == functions
    z = array(payload["reference"]["z"], "<f8").reshape(-1, 2)
    reference = array(payload["reference"]["mean"], "<f8").reshape(len(z), 64)
    assert len(z) == payload["reference"]["count"] == 20
    np.testing.assert_allclose(forward(payload, z), reference, rtol=0, atol=1e-12)
    # The float32 model itself, as the chapter runs it, is within the browser test's tolerance too.
    with torch.no_grad():
        float32 = vae.decode(torch.from_numpy(z).float()).mean.double().numpy()
    assert np.abs(float32 - reference).max() < 1e-5


def test_points_and_labels_are_stored_as_given() -> None:
    vae = trained_looking_vae()
    points = torch.randn(7, 2)
    labels = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    payload = vl.export_decoder(vae.decoder, points, labels, (8, 8), name="pi").payload
    assert payload["points"]["count"] == 7
    np.testing.assert_array_equal(array(payload["points"]["z"], "<f4").reshape(7, 2), points.numpy())
    np.testing.assert_array_equal(array(payload["points"]["labels"], "<i4"), labels.numpy())


def test_the_export_is_a_small_json_mime_bundle_and_leaves_the_global_generator_alone() -> None:
    vae = trained_looking_vae()
    state = torch.random.get_rng_state()
    exported = export(vae)
    assert torch.equal(state, torch.random.get_rng_state())
    bundle = exported._repr_mimebundle_()
    assert set(bundle) == {MIME_TYPE, "text/plain"}
    assert "68,864 bytes of float32 weights" in bundle["text/plain"]
    assert exported.weight_bytes == 4 * (2 * 256 + 256 + 256 * 64 + 64)
    assert len(json.dumps(bundle[MIME_TYPE])) < 200_000
    assert export(vae, seed=0).payload["reference"] == exported.payload["reference"]
    assert export(vae, seed=1).payload["reference"]["z"] != exported.payload["reference"]["z"]


def test_bad_input_is_named() -> None:
    vae = trained_looking_vae()
    points, labels = torch.randn(5, 2), torch.arange(5)
    cases = [
        (dict(decoder=vae.encoder), TypeError, "decoder must be a vae_lib Decoder"),
        (dict(points=torch.randn(5, 3)), ValueError, r"points must be \(N, 2\)"),
        (dict(labels=labels.float()), TypeError, "labels must be an integer tensor"),
        (dict(labels=torch.arange(4)), ValueError, r"labels must be \(5,\)"),
        (dict(image_shape=(7, 7)), ValueError, "image_shape"),
        (dict(name="a/b"), ValueError, "name must be"),
        (dict(n_reference=0), ValueError, "n_reference"),
    ]
    for change, error, message in cases:
        arguments = dict(decoder=vae.decoder, points=points, labels=labels, image_shape=(8, 8), name="ok")
        with pytest.raises(error, match=message):
            vl.export_decoder(**(arguments | change))


def test_decoders_the_page_cannot_run_are_refused() -> None:
    categorical = vl.VAE(64, 2, (16,), likelihood="categorical", levels=17)
    with pytest.raises(ValueError, match="Bernoulli and Gaussian"):
        export(categorical)
    vae = trained_looking_vae()
    vae.decoder.body[1] = nn.GELU()
    with pytest.raises(ValueError, match="ReLU and Tanh"):
        export(vae)
