"""A trained decoder, written out for a web page that runs it without Python.

:func:`export_decoder` turns a :class:`~vae_lib.models.Decoder` (an MLP of ``nn.Linear`` layers with ReLU or
tanh between them) into a JSON-ready dictionary: each layer's weights and the function applied to its
output (the last layer's gives the decoder's mean image), encoded points with their labels to draw, and
the decoder's output at a few latent points computed by PyTorch, against which a page's own forward pass
can be checked. Arrays are little-endian bytes in base64, row by row: float32 for weights and points (as
the model holds them), int32 for labels, float64 for the reference points and outputs. The reference outputs are computed in float64 from the
float32 weights: the arithmetic a JavaScript page does with the same weights.

Displayed in a notebook, a :class:`DecoderExport` is a MIME bundle: ``MIME_TYPE`` holds the dictionary
(for the book's build, which writes it into the page's static files) and ``text/plain`` a summary.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vae_lib._checks import check_float_tensor, check_positive_int, check_tensor
from vae_lib.models import Decoder
from vae_lib.observations import BernoulliObservation, GaussianObservation

__all__ = ["DecoderExport", "export_decoder"]

#: The MIME type of the export in a notebook's output (the book's Sphinx extension looks for it).
MIME_TYPE = "application/vnd.vae-book.decoder-export+json"
#: The version of the dictionary's layout, which the page's JavaScript checks.
FORMAT = "vae-book/decoder-export/1"
_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh"}
_MEANS = {BernoulliObservation: "sigmoid", GaussianObservation: "identity"}


@dataclass(frozen=True)
class DecoderExport:
    """A decoder written out by :func:`export_decoder`; ``payload`` is the JSON-ready dictionary."""

    payload: dict[str, Any]

    @property
    def weight_bytes(self) -> int:
        """Bytes of float32 weights and biases (before base64)."""
        return sum(4 * layer["inputs"] * layer["outputs"] + 4 * layer["outputs"] for layer in self.payload["layers"])

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, object]:
        sizes = " -> ".join(
            str(n) for n in [self.payload["latent_dim"]] + [x["outputs"] for x in self.payload["layers"]]
        )
        summary = (
            f"decoder {self.payload['name']!r} ({sizes}, mean: {self.payload['layers'][-1]['activation']}) exported for the book's page: "
            f"{self.weight_bytes:,} bytes of float32 weights, {self.payload['points']['count']} labelled points, "
            f"{self.payload['reference']['count']} reference outputs"
        )
        return {MIME_TYPE: self.payload, "text/plain": summary}


def _base64(values: Tensor, dtype: str) -> str:
    """The tensor's entries, row by row, as little-endian numbers of ``dtype`` (``"<f4"``, ``"<f8"``, ``"<i4"``)."""
    array = np.ascontiguousarray(values.detach().cpu().numpy(), dtype=dtype)
    return base64.b64encode(array.tobytes()).decode("ascii")


def _layers(decoder: Decoder) -> list[dict[str, Any]]:
    modules = list(decoder.body)
    mean = next((name for kind, name in _MEANS.items() if isinstance(decoder.observation, kind)), None)
    if mean is None:
        raise ValueError(
            f"export_decoder supports Bernoulli and Gaussian decoders, not {type(decoder.observation).__name__}"
        )
    layers = []
    for index, module in enumerate(modules):
        if isinstance(module, nn.Linear):
            if module.bias is None:
                raise ValueError(f"export_decoder needs a bias in every Linear layer, layer {index} has none")
            following = modules[index + 1] if index + 1 < len(modules) else None
            if following is None:
                activation = mean
            elif type(following) in _ACTIVATIONS:
                activation = _ACTIVATIONS[type(following)]
            else:
                raise ValueError(f"export_decoder supports ReLU and Tanh between layers, not {following}")
            layers.append(
                {
                    "inputs": module.in_features,
                    "outputs": module.out_features,
                    "activation": activation,
                    "weight": _base64(module.weight, "<f4"),  # (outputs, inputs), row by row
                    "bias": _base64(module.bias, "<f4"),
                }
            )
        elif type(module) not in _ACTIVATIONS:
            raise ValueError(f"export_decoder supports Linear, ReLU and Tanh layers, not {module}")
    return layers


def export_decoder(
    decoder: Decoder,
    points: Tensor,
    labels: Tensor,
    image_shape: tuple[int, int],
    name: str,
    n_reference: int = 20,
    seed: int = 0,
) -> DecoderExport:
    """Write out ``decoder`` with ``points`` (latent codes, ``(N, latent_dim)``) and their integer ``labels``.

    ``name`` names the export (and the file the book writes it to). The reference outputs are the decoder's
    mean images at ``n_reference`` latent points drawn from N(0, 2^2 I) with a generator seeded by ``seed``
    (the global random state is left alone), computed in float64 from the float32 weights.
    """
    if not isinstance(decoder, Decoder):
        raise TypeError(f"decoder must be a vae_lib Decoder, got {type(decoder).__name__}")
    latent_dim = decoder.latent_dim
    check_float_tensor("points", points, min_dim=2)
    if points.dim() != 2 or points.shape[1] != latent_dim:
        raise ValueError(f"points must be (N, {latent_dim}) latent codes, got shape {tuple(points.shape)}")
    check_tensor("labels", labels, floating=False)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if labels.shape != points.shape[:1]:
        raise ValueError(f"labels must be ({points.shape[0]},), one per point, got shape {tuple(labels.shape)}")
    if len(image_shape) != 2 or image_shape[0] * image_shape[1] != decoder.data_dim:
        raise ValueError(f"image_shape {tuple(image_shape)} does not hold the decoder's {decoder.data_dim} pixels")
    n_reference = check_positive_int("n_reference", n_reference)
    if not name or not all(c.isascii() and (c.isalnum() or c == "-") for c in name):
        raise ValueError(f"name must be letters, digits and '-' (it names a file of the page), got {name!r}")

    layers = _layers(decoder)
    generator = torch.Generator().manual_seed(seed)
    reference_z = 2.0 * torch.randn(n_reference, latent_dim, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        # The float32 weights, multiplied and summed in float64 as the page does.
        exact_body = copy.deepcopy(decoder.body).to("cpu", torch.float64)
        reference = decoder.observation.distribution(exact_body(reference_z)).mean
    payload = {
        "format": FORMAT,
        "name": name,
        "latent_dim": latent_dim,
        "image_shape": [int(image_shape[0]), int(image_shape[1])],
        "layers": layers,
        "points": {"count": len(points), "z": _base64(points, "<f4"), "labels": _base64(labels, "<i4")},
        "reference": {"count": n_reference, "z": _base64(reference_z, "<f8"), "mean": _base64(reference, "<f8")},
        "torch_version": torch.__version__,
    }
    return DecoderExport(payload)
