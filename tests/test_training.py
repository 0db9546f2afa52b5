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
    assert history.records[-1].train["elbo"] > history.records[0].train["elbo"] + 5.0
    assert history.records[-1].val["elbo"] > history.records[0].val["elbo"]
    train = history.records[-1].train
    assert abs(train["elbo"] - (train["expected_log_likelihood"] - train["kl"])) < 1e-4


def test_two_runs_with_one_seed_give_identical_histories_and_weights() -> None:
    train, val = tiny_data()
    runs = []
    for _ in range(2):
        vl.seed_everything(3)  # fit's seed covers shuffling and sampling; the weights' initialization is ours
        model = vl.VAE(64, 3, (16,))
        history = vl.fit(model, train, val, epochs=3, batch_size=64, seed=7, device="cpu")
        runs.append((history, model.state_dict()))
    assert [r.to_dict() | {"seconds": 0} for r in runs[0][0].records] == [
        r.to_dict() | {"seconds": 0} for r in runs[1][0].records
    ]
    for name, tensor in runs[0][1].items():
        assert torch.equal(tensor, runs[1][1][name]), name


def test_different_seeds_give_different_runs() -> None:
    train, _ = tiny_data()
    elbos = [
        vl.fit(vl.VAE(64, 2, (16,)), train, epochs=2, seed=seed, device="cpu").records[-1].train["elbo"]
        for seed in (0, 1)
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
    best = max(history.records, key=lambda r: r.val["elbo"])
    assert history.best_epoch == best.epoch
    assert len(history) == best.epoch + 5
    restored = vl.evaluate(model, val)
    assert abs(float(restored.elbo) - best.val["elbo"]) < 1e-6


def test_fit_accepts_a_tuple_of_tensors_and_passes_it_to_the_loss() -> None:
    train, _ = tiny_data()
    labels = torch.arange(len(train)) % 10
    seen = []

    def loss_fn(model, batch, epoch, generator):
        x, y = batch
        seen.append((x.shape[0], y.shape[0], epoch, generator))
        terms = model.elbo(x, generator=generator)
        return vl.negative_elbo_loss(terms, kl_weight=0.5), terms

    vl.fit(vl.VAE(64, 2, (16,)), (train, labels), epochs=2, batch_size=100, loss_fn=loss_fn, device="cpu")
    assert seen[0][:3] == (100, 100, 1) and seen[-1][2] == 2
    assert isinstance(seen[0][3], torch.Generator) and all(step[3] is seen[0][3] for step in seen)


def test_history_keeps_each_splits_terms_as_a_mapping() -> None:
    train, val = tiny_data()
    history = vl.fit(vl.VAE(64, 2, (16,)), train, epochs=2, device="cpu")
    assert history.epochs == [1, 2] and history.series("val", "elbo") == [None, None]
    assert history.series("train", "kl") == [record.train["kl"] for record in history.records]
    assert vl.History.from_dict(history.to_dict()) == history
    with pytest.raises(ValueError, match="unknown term 'elbow'"):
        history.series("train", "elbow")
    with pytest.raises(ValueError, match="unknown split"):
        history.series("test", "elbo")


def test_fit_checks_every_example_once_before_training() -> None:
    train, _ = tiny_data()
    train = train.clone()
    train[-1, 0] = 1.5  # not a Bernoulli pixel
    model = vl.VAE(64, 2, (16,))
    with pytest.raises(ValueError, match=r"train\[0\] must lie in \[0, 1\]"):
        vl.fit(model, train, epochs=2, batch_size=32, seed=0, device="cpu")


def test_a_trainer_continues_one_run_across_calls() -> None:
    """Two calls of 2 and 3 epochs are one run of 5: Adam's state, the generators and the history carry over."""
    train, val = tiny_data()
    states = []
    for split in ((5,), (2, 3)):
        vl.seed_everything(3)
        model = vl.VAE(64, 3, (16,))
        trainer = vl.Trainer(model, train, val, batch_size=64, seed=7, device="cpu", loss_fn=vl.kl_annealing_loss(4))
        for epochs in split:
            torch.manual_seed(123)  # the global generator plays no part
            trainer.train(epochs)
        assert trainer.epoch == 5 and trainer.history.epochs == [1, 2, 3, 4, 5]
        states.append((model.state_dict(), trainer.optimizer.state_dict()["state"], trainer.history))
    (weights_a, adam_a, history_a), (weights_b, adam_b, history_b) = states
    for name, tensor in weights_a.items():
        assert torch.equal(tensor, weights_b[name]), name
    assert adam_a[0]["step"] == adam_b[0]["step"] == 5 * 4  # 4 steps per epoch, never reset
    assert [r.to_dict() | {"seconds": 0} for r in history_a.records] == [
        r.to_dict() | {"seconds": 0} for r in history_b.records
    ]


def test_fit_and_evaluate_leave_the_global_generator_alone() -> None:
    train, val = tiny_data()
    model = vl.VAE(64, 2, (16,))  # a new model's weights do come from it
    before = torch.random.get_rng_state()
    vl.fit(model, train[:64], val[:32], epochs=1, device="cpu")
    vl.evaluate(model, val)
    assert torch.equal(before, torch.random.get_rng_state())
