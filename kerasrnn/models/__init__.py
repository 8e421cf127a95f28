"""Model families: the recurrent stack (`recurrent.py`), the GPT (`gpt.py`), minGRU and minLSTM (`mingru.py`), and
any a user registers.

A family (`Family`, family.py) owns everything that differs between kinds of model: its options and their
checks, how it builds itself at (batch, length), the Keras step model sampling runs, and the step graphs the
writers of kerasrnn_export convert. Training, sampling, fine-tuning, export and inspect ask the family of a
config (`family`) or of a model (`family_of`); nothing outside a family's own module branches on its name.

    import kerasrnn.models as models
    models.register(MyFamily())          # then kerasrnn.Run.train(..., model="mine") in this process
"""
from kerasrnn_edge.errors import UserError, option

from .family import Family
from .language_model import LanguageModel

_FAMILIES = {}


def register(family: Family) -> Family:
    """Makes `family` a `--model` choice (a later registration of its name replaces the earlier one)."""
    _FAMILIES[family.name] = family
    return family


def unregister(name: str):
    """Takes a registered family away (a test's family, when the test ends)."""
    _FAMILIES.pop(name, None)


def names():
    """The registered families' names, in registration order."""
    return tuple(_FAMILIES)


def families():
    return tuple(_FAMILIES.values())


def family(name: str) -> Family:
    """The family registered as `name` (a Config's `model`)."""
    if name not in _FAMILIES:
        raise UserError(f"{option('model')} must be one of {', '.join(_FAMILIES)} (got {name!r})")
    return _FAMILIES[name]


def family_of(model) -> Family:
    """The family that built `model`: the one its config names, or for a checkpoint saved before models carried
    their family, the one whose core layer it holds."""
    name = model.family_name if isinstance(model, LanguageModel) else None
    if name is None:
        name = next((f.name for f in _FAMILIES.values() if f.core_of(model) is not None), None)
    if name not in _FAMILIES:
        raise UserError(f"{model.name} is a model of the {name!r} family, which is not registered here (these are: "
                        f"{', '.join(_FAMILIES)}): register it first (kerasrnn.models.register)")
    return _FAMILIES[name]


def build_args(model):
    """The builder's arguments that rebuild `model` (its family's `build` keywords besides vocabulary and batch)."""
    return family_of(model).build_args(model)


def rebuild(model, batch_size, seq_length=None):
    """`model` built again at another batch size and sequence length (None: any), with its trained weights and
    start state: what sampling runs at B streams."""
    return family_of(model).rebuild(model, batch_size, seq_length)


from . import gpt, mingru, recurrent  # noqa: E402  (the built-in families, after the registry they join)

register(recurrent.RECURRENT)
register(gpt.GPT_FAMILY)
register(mingru.MINGRU)
register(mingru.MINLSTM)

__all__ = ["Family", "LanguageModel", "build_args", "families", "family", "family_of", "names", "rebuild",
           "register", "unregister", "gpt", "mingru", "recurrent"]
