"""The small files a user points kube-engine at besides snapshots (a scheduler configuration, a
price table): JSON or YAML, read within bounds. Every fault is a :class:`ConfigError` naming the
file; nothing in such a file can make the read take long or much memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from kube_engine._core import ConfigError

#: The most bytes read from one such file. Real scheduler configurations are a few KB and a price
#: table of 100,000 nodes about 3 MiB; more is a mistake (``/dev/zero``, a snapshot passed as a
#: profile). A module setting: assign to it to read larger files.
MAX_FILE_BYTES = 4 * 1024 * 1024

#: The most values (mappings, lists and scalars) a file may hold once its YAML aliases are
#: expanded. kube-scheduler's YAML reader (go-yaml) expands aliases too, within a budget; without
#: one a 1 KB file of nested aliases ("billion laughs") expands to gigabytes. A file without
#: aliases needs at least two bytes a value, so no file under :data:`MAX_FILE_BYTES` that is not
#: built of aliases comes near it.
MAX_EXPANDED_VALUES = 2 * 1024 * 1024


def load_mapping(path: str | os.PathLike[str], what: str) -> dict[Any, Any]:
    """The mapping in the JSON or YAML file at ``path`` (``what`` it should hold, for messages:
    "a price table"), read within :data:`MAX_FILE_BYTES` and :data:`MAX_EXPANDED_VALUES`."""
    name = os.fspath(path)
    data = read_limited(name, MAX_FILE_BYTES)
    import yaml

    # Scalars typed as kube-scheduler's YAML reader types them (sigs.k8s.io/yaml), as snapshots.
    from kube_engine.sources import values_within, yaml_loader

    try:
        doc = yaml.load(data, Loader=yaml_loader())
    except yaml.YAMLError as e:
        # PyYAML's message spans lines and calls the input "<byte string>": one line, the file's.
        problem = " ".join(str(e).replace('in "<byte string>",', "at").split())
        raise ConfigError(f"{name}: not valid YAML or JSON ({what}): {_cut(problem)}") from None
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply to be {what}") from None
    if not isinstance(doc, dict):
        kind = "nothing" if doc is None else "a list" if isinstance(doc, list) else "a scalar"
        raise ConfigError(f"{name}: expected {what} (a mapping), got {kind}")
    if not values_within([doc], MAX_EXPANDED_VALUES):
        raise ConfigError(
            f"{name}: more than {MAX_EXPANDED_VALUES:,} values once its YAML aliases are "
            "expanded (kube_engine.option_files.MAX_EXPANDED_VALUES)"
        )
    return doc


def to_json(data: Any, where: str) -> str:
    """``data`` (a mapping from a file or a caller) as JSON text for the core."""
    try:
        return json.dumps(data, allow_nan=False)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None
    except (TypeError, ValueError) as e:
        # TypeError: a value JSON has no type for (a set, a date, an object); ValueError: NaN or
        # infinity, or a mapping that holds itself.
        raise ConfigError(f"{where}: a value JSON cannot hold: {_cut(str(e))}") from None


def read_limited(name: str, limit: int, error: Callable[[str], Exception] = ConfigError) -> bytes:
    """The bytes of file ``name``, at most ``limit`` of them (more is ``error``, naming the
    file, as is a file that cannot be read)."""
    try:
        with open(name, "rb") as f:
            # One byte more than allowed tells a file at the limit from one beyond it; a pipe or
            # a device is read the same way, never to its end.
            data = f.read(limit + 1)
    except OSError as e:
        raise error(f"{name}: {e.strerror or e}") from None
    if len(data) > limit:
        raise error(f"{name}: larger than {limit:,} bytes")
    return data


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
