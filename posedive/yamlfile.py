"""YAML files read strictly: a key given twice in one mapping is an error, not "the last one wins".

PyYAML's ``safe_load`` keeps the last of two equal keys silently, so a recipe with ``seed: 0`` and,
forty lines later, ``seed: 1`` builds with seed 1 and nobody notices. ``read_yaml`` refuses such a
file, naming the key and both lines. Everything else is plain ``yaml.safe_load``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ConfigError, PathNotFound


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader whose mappings refuse duplicate keys."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            first = seen.setdefault(key, line)
        except TypeError:  # an unhashable key: the base constructor reports it
            break
        if first != line:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}: first on line {first}, again on line {line}", key_node.start_mark
            )
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def parse_yaml(text: str, source: str, error: type[ConfigError] = ConfigError) -> object:
    """The data of YAML ``text``; ``error`` (naming ``source``) for invalid YAML or a duplicate key."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as problem:
        raise error(f"{source}: not valid YAML: {problem}") from None


def read_yaml(path: Path | str, what: str = "file", error: type[ConfigError] = ConfigError) -> object:
    """Read a YAML file strictly (see the module docstring); errors name ``path``."""
    path = Path(path)
    if not path.is_file():
        raise PathNotFound(f"{path}: {what} not found")
    return parse_yaml(path.read_text(), str(path), error)
