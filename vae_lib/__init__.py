"""vae_lib: the small library behind *Variational Autoencoders, Derived and Checked*.

Each function that implements an equation of the book names the equation's label in its docstring.
Import it as ``import vae_lib as vl``; importing changes no global state.
"""

from vae_lib.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from vae_lib.conditional import ConditionalVAE, one_hot
from vae_lib.data import DATASET_NAMES, DatasetSplits, Split, load_dataset, load_digits, load_torchvision
from vae_lib.device import default_device, seed_everything
from vae_lib.distributions import (
    BernoulliObservation,
    CategoricalObservation,
    GaussianObservation,
    bernoulli_log_likelihood,
    diagonal_gaussian_log_prob,
    gaussian_log_likelihood,
    kl_diagonal_gaussians,
    kl_per_dimension,
    kl_standard_normal,
    observation_model,
    reparameterize,
    standard_normal_log_prob,
)
from vae_lib.export import DecoderExport, export_decoder
from vae_lib.linear_gaussian import LinearGaussianModel
from vae_lib.models import VAE, Decoder, GaussianEncoder, mlp
from vae_lib.objectives import ELBOTerms, elbo, importance_weighted_bound, iwae_loss, negative_elbo_loss
from vae_lib.plotting import image_grid, latent_scatter, plot_history, use_book_style
from vae_lib.regularization import (
    active_units,
    annealing_weight,
    beta_elbo_loss,
    free_bits_loss,
    kl_annealing_loss,
    latent_activity,
    posterior_parameters,
)
from vae_lib.training import EpochRecord, History, TrainingDivergedError, elbo_loss, evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "DATASET_NAMES",
    "VAE",
    "BernoulliObservation",
    "CategoricalObservation",
    "CheckpointError",
    "ConditionalVAE",
    "DatasetSplits",
    "Decoder",
    "DecoderExport",
    "ELBOTerms",
    "EpochRecord",
    "GaussianEncoder",
    "GaussianObservation",
    "History",
    "LinearGaussianModel",
    "Split",
    "TrainingDivergedError",
    "active_units",
    "annealing_weight",
    "bernoulli_log_likelihood",
    "beta_elbo_loss",
    "default_device",
    "diagonal_gaussian_log_prob",
    "elbo",
    "elbo_loss",
    "evaluate",
    "export_decoder",
    "fit",
    "free_bits_loss",
    "gaussian_log_likelihood",
    "image_grid",
    "importance_weighted_bound",
    "iwae_loss",
    "kl_annealing_loss",
    "kl_diagonal_gaussians",
    "kl_per_dimension",
    "kl_standard_normal",
    "latent_activity",
    "latent_scatter",
    "load_checkpoint",
    "load_dataset",
    "load_digits",
    "load_model",
    "load_torchvision",
    "mlp",
    "negative_elbo_loss",
    "observation_model",
    "one_hot",
    "plot_history",
    "posterior_parameters",
    "reparameterize",
    "save_checkpoint",
    "seed_everything",
    "standard_normal_log_prob",
    "use_book_style",
]
