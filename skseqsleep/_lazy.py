"""Lazy public names for packages (PEP 562): importing a package stays cheap."""

from importlib import import_module


def lazy_module_attributes(package: str, names: dict[str, str], submodules=()):
    """Return ``(__getattr__, __dir__)`` resolving ``names`` (name -> module) on first use."""

    def __getattr__(name):
        if name in names:
            return getattr(import_module(names[name]), name)
        if name in submodules:
            return import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*names, *submodules})

    return __getattr__, __dir__
