"""Stand-ins for the heavy packages LMDeploy imports at module top (torch, transformers, ...).

Every LMDeploy release imports `torch` in `lmdeploy/messages.py` and `lmdeploy/utils.py`, and
`transformers` in `utils.py`, so its HTTP layer cannot even be imported without them; the real
packages are gigabytes and need no GPU code here, because the fake engine never computes anything.
`install()` puts a finder on `sys.meta_path` that answers every import of those packages (and any
of their submodules) with a module whose every attribute is a permissive stand-in class: it can be
subclassed, called, indexed, compared and used as a decorator, which is all the import-time code
does with them. The few values LMDeploy reads for real (versions, "is there a GPU") are set to
what a CPU-only machine would report.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any, Optional, Sequence

# Top-level packages that are replaced: what the server's import path of 0.12.3 and 0.18.0 asks
# for (torch, transformers, openai_harmony — the gpt-oss parser's Rust wheel), plus the two the
# notes name for other paths (torchvision, triton) and xgrammar, which 0.18 imports lazily for
# `tool_choice: "required"`.
STUBBED = frozenset({"torch", "torchvision", "transformers", "triton", "openai_harmony", "xgrammar"})


class _AnyMeta(type):
    """The metaclass of every stand-in: a class attribute that does not exist is another stand-in."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _stand_in(name)

    def __getitem__(cls, item: Any) -> Any:
        # `torch.Tensor[...]`-style annotations evaluated at import time.
        return cls

    def __or__(cls, other: Any) -> Any:
        # `torch.Tensor | None` in annotations that are evaluated.
        return cls

    def __ror__(cls, other: Any) -> Any:
        return cls


class _Any(metaclass=_AnyMeta):
    """An instance that accepts whatever is done to it and gives back more of itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Used as a decorator (`@torch.inference_mode()`, `@triton.jit`): remember nothing.
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # A decorator applied to a function returns the function, so decorated code still works.
        if len(args) == 1 and not kwargs and callable(args[0]):
            return args[0]
        return _Any()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Any()

    def __getitem__(self, item: Any) -> Any:
        return _Any()

    def __iter__(self) -> Any:
        return iter(())

    def __bool__(self) -> bool:
        return False

    def __int__(self) -> int:
        return 0

    def __index__(self) -> int:
        return 0


def _stand_in(name: str) -> type:
    """A fresh stand-in class, so `class Model(torch.nn.Module)` and friends can subclass it."""
    return _AnyMeta(name, (_Any,), {})


class _StubModule(types.ModuleType):
    """A stubbed module: real attributes set below, anything else a stand-in class."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = _stand_in(name)
        setattr(self, name, value)
        return value


class _StubLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StubModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []  # a package, so any submodule can be imported too
        _known_values(module)


class _StubFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Any = None
                  ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname.split(".", 1)[0] not in STUBBED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _StubLoader(), is_package=True)


def _false(*args: Any, **kwargs: Any) -> bool:
    return False


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _known_values(module: types.ModuleType) -> None:
    """The values LMDeploy and mmengine read and compare for real: a CPU-only machine's."""
    name = module.__name__
    if name in {"torch", "transformers", "torchvision", "triton", "xgrammar"}:
        module.__version__ = {"torch": "2.8.0", "transformers": "4.56.0", "torchvision": "0.23.0",
                              "triton": "3.4.0", "xgrammar": "0.2.0"}[name]
    if name == "torch.cuda":
        # mmengine's logger asks for the device count whenever a registry lookup logs.
        module.is_available = _false
        module.device_count = _zero
        module.current_device = _zero
        module.is_initialized = _false
    if name == "torch.distributed":
        module.is_available = _false
        module.is_initialized = _false
    if name == "torch":
        module.cuda = sys.modules.get("torch.cuda") or __import__("torch.cuda").cuda


def install() -> None:
    """Answer imports of the heavy packages with stand-ins, before anything imports LMDeploy."""
    if not any(isinstance(finder, _StubFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _StubFinder())
