"""Typos on the command line, caught before Hydra composes: one line, the closest valid choice.

Hydra answers ``+experiment=shufled_labels`` with fourteen lines (the options, its search path,
an environment variable to set) and a misspelt key with six. ``check_overrides`` looks at the
overrides first, with Hydra's own parsers, against what ``conf/`` holds:

- a config group (``data``, ``model``, ``experiment``) must be given one of its files;
- a key (``model.learning_rate=0.1``) must exist in the configuration those groups compose.

It returns the one-line message for the first typo (``None`` if there is none); ``exit_on_typo``
prints it and exits with status 1. Anything it cannot judge (``hydra.*``, ``+key`` additions,
``~key`` deletions, another ``--config-path``, a syntax error) is left to Hydra.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

CONF = Path(__file__).resolve().parent.parent / "conf"
# Flags after which Hydra is not going to run this conf/ as given: nothing to check.
_NOT_A_RUN = ("help", "hydra_help", "shell_completion", "config_path", "config_dir", "config_name")


def groups(conf: Path = CONF) -> dict[str, list[str]]:
    """Each config group of ``conf`` and its options: ``{"model": ["numpy_mlp", ...]}``."""
    return {
        folder.name: sorted(p.stem for p in folder.glob("*.yaml"))
        for folder in sorted(conf.iterdir())
        if folder.is_dir() and any(folder.glob("*.yaml"))
    }


def closest(given: str, choices: Sequence[str]) -> str | None:
    """The choice most like ``given`` (difflib), or None when nothing is close."""
    found = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def check_overrides(argv: Sequence[str], conf: Path = CONF) -> str | None:
    """The one-line message for the first mistyped override in ``argv``, or None.

    ``argv`` is the command line after ``python -m pipeline`` (flags included).
    """
    overrides = _parse(argv)
    if overrides is None:
        return None
    options = groups(conf)
    chosen: list[str] = []
    for override in overrides:
        key = override.key_or_group
        if override.is_hydra_override() or override.package is not None:
            continue
        if key in options:
            message = _check_group(override, key, options[key])
            if message:
                return message
            if not override.is_delete() and not _is_glob(override):
                chosen.append(f"{key}={_values(override)[0]}")
    config = _compose(conf, [c if not c.startswith("experiment=") else "+" + c for c in chosen])
    if config is None:
        return None
    for override in overrides:
        key = override.key_or_group
        if key in options or override.is_hydra_override() or override.package is not None:
            continue
        if override.is_add() or override.is_force_add() or override.is_delete():
            continue
        message = _check_key(override, config, conf)
        if message:
            return message
    return None


def exit_on_typo(argv: Sequence[str]) -> None:
    """Print ``check_overrides``'s message as ``error: ...`` and exit 1, if there is one."""
    message = check_overrides(argv)
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


def _parse(argv: Sequence[str]):
    """Hydra's own reading of the command line: its overrides, or None when not to check."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        args, _ = get_args_parser().parse_known_args(list(argv))
    except SystemExit:  # argparse's own error: Hydra says it again, its way
        return None
    if any(getattr(args, flag, None) for flag in _NOT_A_RUN):
        return None
    try:
        return OverridesParser.create().parse_overrides(args.overrides or [])
    except HydraException:
        return None


def _values(override) -> list[str]:
    """The options an override names: one, a sweep's several, or a list's (``[a,b]``)."""
    if override.is_sweep_override():
        return list(override.sweep_string_iterator())
    value = override.value()
    if isinstance(value, list):
        return [str(v) for v in value]
    return [override.get_value_element_as_str()]


def _is_glob(override) -> bool:
    from hydra.core.override_parser.types import Glob

    return isinstance(override.value(), Glob)


def _check_group(override, group: str, choices: list[str]) -> str | None:
    """An option that is no file of ``conf/<group>/``; ``experiment=`` without its ``+``."""
    if override.is_delete() or _is_glob(override):
        return None
    text = override.input_line
    given = text.partition("=")[0]  # as typed: model, +experiment, ...
    for value in _values(override):
        if value not in choices:
            guess = closest(value, choices)
            hint = f"did you mean {given}={guess}?" if guess else f"choices: {', '.join(choices)}"
            return f"{text}: there is no {group} {value!r} ({hint})"
    if group == "experiment" and not (override.is_add() or override.is_force_add()):
        return f"{text}: experiments are added, not replaced: write +{text}"
    return None


def _check_key(override, config: Mapping, conf: Path = CONF) -> str | None:
    """A dotted key that does not exist in the composed configuration."""
    group, _, rest = override.key_or_group.partition(".")
    owners = _options_with(conf, group, rest) if rest else []
    if owners and rest not in config.get(group, {}):
        choices = " or ".join(f"{group}={o}" for o in owners)
        return f"{override.input_line}: {group}.{rest} is a setting of {choices}: choose it first"
    node: object = config
    path: list[str] = []
    for part in override.key_or_group.split("."):
        if not isinstance(node, Mapping):
            return None  # inside a list or a value: Hydra's to judge
        if part not in node:
            where = ".".join(path)
            siblings = [str(k) for k in node]
            guess = closest(part, siblings)
            full = ".".join([*path, guess]) if guess else None
            owner = where or "the configuration"
            hint = f"did you mean {full}?" if full else f"its settings: {', '.join(siblings)}"
            return f"{override.input_line}: {owner} has no setting {part!r} ({hint})"
        path.append(part)
        node = node[part]
    return None


def _options_with(conf: Path, group: str, key: str) -> list[str]:
    """The options of ``conf/<group>/`` that define the top-level ``key``."""
    import yaml

    folder = conf / group
    if "." in key or not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.yaml")):
        content = yaml.safe_load(path.read_text()) or {}
        if isinstance(content, dict) and key in content:
            found.append(path.stem)
    return found


def _compose(conf: Path, group_choices: list[str]) -> Mapping | None:
    """The configuration ``conf`` composes with ``group_choices`` (None if it cannot)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    try:
        with initialize_config_dir(str(conf), version_base="1.3"):
            composed = compose("config", overrides=group_choices)
    except Exception:  # whatever is wrong, Hydra will say it when it composes for real
        return None
    return OmegaConf.to_container(composed, resolve=False)
