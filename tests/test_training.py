"""fit: it learns, it is repeatable, and early stopping keeps the best weights."""

import pytest
import torch

import vae_lib as vl


def tiny_data() -> tuple[torch.Tensor, torch.Tensor]:
    digits = vl.load_digits(seed=0).binarized()
    return digits.train.x[:256], digits.val.x[:128]


def test_fit_lowers_the_negative_elbo() -> None:
    train, val = tiny_data()
    model = vl.VAE(64, 2, (32,))
    history = vl.fit(model, train, val, epochs=15, batch_size=32, learning_rate=3e-3, seed=0, device="cpu")
    assert len(history) == 15
    assert history.records[-1].train_elbo > history.records[0].train_elbo + 5.0
    assert history.records[-1].val_elbo > history.records[0].val_elbo
    record = history.records[-1]
    assert abs(record.train_elbo - (record.train_expected_log_likelihood - record.train_kl)) < 1e-4


def test_two_runs_with_one_seed_give_identical_histories_and_weights() -> None:
    train, val = tiny_data()
    runs = []
    for _ in range(2):
        vl.seed_everything(3)  # fit's seed covers shuffling and sampling; the weights' initialization is ours
        model = vl.VAE(64, 3, (16,))
        history = vl.fit(model, train, val, epochs=3, batch_size=64, seed=7, device="cpu")
        runs.append((history, model.state_dict()))
    assert [r.__dict__ | {"seconds": 0} for r in runs[0][0].records] == [
        r.__dict__ | {"seconds": 0} for r in runs[1][0].records
    ]
    for name, tensor in runs[0][1].items():
        assert torch.equal(tensor, runs[1][1][name]), name


def test_different_seeds_give_different_runs() -> None:
    train, _ = tiny_data()
    elbos = [
        vl.fit(vl.VAE(64, 2, (16,)), train, epochs=2, seed=seed, device="cpu").records[-1].train_elbo for seed in (0, 1)
    ]
    assert elbos[0] != elbos[1]


def test_early_stopping_restores_the_best_epoch() -> None:
    train, val = tiny_data()
    model = vl.VAE(64, 8, (128,))
    # A large model on 64 training images overfits quickly, so validation stops improving.
    history = vl.fit(
        model, train[:64], val, epochs=200, batch_size=16, learning_rate=3e-3, seed=0, device="cpu", patience=5
    )
    assert len(history) < 200
    best = max(history.records, key=lambda r: r.val_elbo)
    assert history.best_epoch == best.epoch
    assert len(history) == best.epoch + 5
    restored = vl.evaluate(model, val)
    assert abs(float(restored.elbo) - best.val_elbo) < 1e-6


def test_fit_accepts_a_tuple_of_tensors_and_passes_it_to_the_loss() -> None:
    train, _ = tiny_data()
    labels = torch.arange(len(train)) % 10
    seen = []

    def loss_fn(model, batch, epoch):
        x, y = batch
        seen.append((x.shape[0], y.shape[0], epoch))
        terms = model.elbo(x)
        return vl.negative_elbo_loss(terms, kl_weight=0.5), terms

    vl.fit(vl.VAE(64, 2, (16,)), (train, labels), epochs=2, batch_size=100, loss_fn=loss_fn, device="cpu")
    assert seen[0] == (100, 100, 1) and seen[-1][2] == 2


def test_history_columns() -> None:
    train, _ = tiny_data()
    history = vl.fit(vl.VAE(64, 2, (16,)), train, epochs=2, device="cpu")
    assert history.column("epoch") == [1, 2]
    assert history.column("val_elbo") == [None, None]


def test_value_checks_are_skipped_only_inside_the_block() -> None:
    from vae_lib._checks import value_checks_skipped

    bad = torch.tensor([[0.0, float("nan")]])
    with value_checks_skipped():
        vl.kl_standard_normal(bad, torch.zeros(1, 2))  # no check: NaN in, NaN out
        vl.CategoricalObservation(17).level_index(torch.tensor([[0.03]]))  # off the grid, not checked
    with pytest.raises(ValueError, match="non-finite"):
        vl.kl_standard_normal(bad, torch.zeros(1, 2))


def test_fit_checks_every_example_in_its_first_epoch() -> None:
    train, _ = tiny_data()
    train = train.clone()
    train[-1, 0] = 1.5  # not a Bernoulli pixel: the last batch of the first epoch meets it
    model = vl.VAE(64, 2, (16,))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vl.fit(model, train, epochs=2, batch_size=32, seed=0, device="cpu")
