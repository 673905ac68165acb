"""Config files (`deepcrl train --config FILE`) and presets (`--preset NAME`) into a `Config`.

A config file is a YAML (.yaml, .yml) or JSON (.json) file holding a flat mapping of `Config` field
names to values (`depth: 16`); hyphenated names (`batch-size`) are accepted too. Every problem (a
missing or unreadable file, bad syntax, a top level that is not a mapping, unknown keys, values of the
wrong type, a key given twice) raises ConfigError with one line naming the file and the bad key or
value. Ranges and combinations are left to `deepcrl.build.validate`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from deepcrl.config import RENAMED_FIELDS, Config, check_field_type, short_repr
from deepcrl.errors import ConfigError, read_user_text

CONFIG_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def config_from_mapping(data: Any, source: str | None = None, base: Config | None = None) -> Config:
    """A Config from a flat mapping of field names to values, as read from a config file.

    Hyphenated names (`batch-size`) are accepted for `batch_size`. Unknown keys and values of the wrong
    type raise ConfigError (prefixed with "config file SOURCE: " when `source` is given); int values of
    float fields become floats. Ranges and combinations are left to `validate`. Keys not in the
    mapping keep their values in `base` (default: the built-in defaults).
    """
    prefix = "" if source is None else f"config file {source!r}: "
    try:
        if not isinstance(data, Mapping):
            got = "nothing (an empty file)" if data is None else f"{type(data).__name__} {short_repr(data, 40)}"
            raise ConfigError(f"the top level must be a mapping of setting names to values (depth: 16), got {got}")
        known = {f.name for f in dataclasses.fields(Config)}
        values: dict[Any, Any] = {}
        spelled: dict[str, str] = {}
        for key, value in data.items():
            name = key
            if isinstance(key, str) and key not in known and key.replace("-", "_") in known:
                name = key.replace("-", "_")
            if isinstance(key, str) and key.replace("-", "_") in RENAMED_FIELDS:
                name = RENAMED_FIELDS[key.replace("-", "_")]
            if isinstance(name, str) and name in spelled:
                raise ConfigError(f"{name!r} is given twice (as {spelled[name]!r} and {key!r}); keep one")
            if isinstance(name, str):
                spelled[name] = key
            values[name] = value
        Config.from_dict(values)  # unknown keys, by name
        return dataclasses.replace(base or Config(), **{name: check_field_type(name, value) for name, value in values.items()})
    except ConfigError as e:
        raise ConfigError(prefix + str(e)) from None


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads 1e-3 as a float (YAML 1.2) and rejects duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen: set[str] = set()
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key_node.value!r} is given twice", key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


# add_implicit_resolver copies the class-level table first, so yaml.SafeLoader itself is left unchanged.
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"key {key!r} is given twice")
        out[key] = value
    return out


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_config_text(text: str, fmt: str) -> Any:
    """The value a config file's text holds; fmt is "json" or "yaml". ConfigError if it does not parse."""
    try:
        if fmt == "json":
            return json.loads(text, object_pairs_hook=_json_object)
        return yaml.load(text, Loader=_YamlLoader)
    except ConfigError:
        raise
    except json.JSONDecodeError as e:
        raise ConfigError(f"is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"is not valid YAML: {_one_line(e.problem or e.context or 'syntax error')}{where}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"is not valid YAML: {_one_line(e)}") from None
    except RecursionError:
        raise ConfigError(f"is nested too deeply to be a {fmt.upper()} config") from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. a YAML timestamp out of range
        raise ConfigError(f"cannot be parsed as {fmt.upper()}: {_one_line(e) or type(e).__name__}") from None


def preset_config(name: str) -> Config:
    """The Config of a named preset (`deepcrl train --preset NAME`; see deepcrl.presets)."""
    from deepcrl.presets import PRESET_NAMES, PRESETS

    if name not in PRESETS:
        raise ConfigError(f"preset {name!r} is unknown; choose one of: {', '.join(PRESET_NAMES)}")
    return dataclasses.replace(Config(), **PRESETS[name])


def load_config_file(path: str | Path, base: Config | None = None) -> Config:
    """The Config in a YAML (.yaml, .yml) or JSON (.json) file holding a flat mapping of field names to
    values. Every problem (missing or unreadable file, bad syntax, a top level that is not a mapping,
    unknown keys, wrong types) raises ConfigError with one line naming the file and the bad key or value.
    Ranges and combinations are checked by `validate`.
    """
    source = str(path)
    suffix = Path(source).suffix.lower()
    if suffix not in CONFIG_FILE_SUFFIXES:
        raise ConfigError(f"config file {source!r} has an unknown format; its name must end in .yaml or .yml (YAML) or .json (JSON)")
    text = read_user_text(source, "config file")
    try:
        data = parse_config_text(text, "json" if suffix == ".json" else "yaml")
    except ConfigError as e:
        raise ConfigError(f"config file {source!r} {e}") from None
    return config_from_mapping(data, source=source, base=base)
