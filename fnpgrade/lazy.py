"""Names a package exports without importing their modules until first use (``import fnpgrade`` stays fast)."""

from __future__ import annotations

from importlib import import_module

__all__ = ["lazy_exports"]


def lazy_exports(package, exports, namespace):
    """The module ``__getattr__`` and ``__dir__`` (PEP 562) of ``package`` for ``{name: module}`` ``exports``.

    A name is imported from its module on first access and kept in
    ``namespace`` (the package's ``globals()``), so later accesses are plain lookups.
    """
    names = sorted(exports)

    def __getattr__(name):
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def __dir__():
        return namespace.get("__all__", names)

    return __getattr__, __dir__
