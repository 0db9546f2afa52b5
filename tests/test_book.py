"""vl.glue: myst-nb's glue where the book's build runs, a no-op where myst-nb is missing (Colab)."""

import builtins
import sys

import pytest

import vae_lib as vl


def test_glue_hands_the_value_to_myst_nb(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = []
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display: recorded.append((name, value, display)))
    vl.glue("gap", 0.5)
    assert recorded == [("gap", 0.5, False)]


def test_glue_does_nothing_without_myst_nb(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_myst_nb(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("myst_nb"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "myst_nb", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    vl.glue("gap", 0.5)


@pytest.mark.parametrize("name", ["", "two words", "1st", None])
def test_a_name_the_prose_cannot_refer_to_is_refused(name: object) -> None:
    with pytest.raises(ValueError, match="must be a Python identifier"):
        vl.glue(name, 1.0)  # type: ignore[arg-type]
