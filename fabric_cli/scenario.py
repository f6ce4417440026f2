"""Scenarios: one TOML file per experiment (grammar, model, training, probes), checked whole.

Every problem is found before any training starts and reported as one line naming the file,
the key and what was expected: `pronouns.toml: model.n_heads: expected a positive integer
dividing model.d_model (64), got 5`.
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from fabric_cli import toml_text
from fabric_cli.errors import FabricError
from fabric_cli.language import schema
from fabric_cli.language.grammar import Grammar, parse_grammar
from fabric_cli.language.tokenizer import split_words

DEFAULT_SCENARIO = "pronouns"
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class ModelShape:
    n_layers: int  # blocks
    n_heads: int  # attention heads per block
    d_model: int  # residual stream width; n_heads divides it
    d_mlp: int  # feed-forward hidden width
    n_ctx: int  # longest sequence, <bos> included
    residual: bool = True  # each block adds to the stream (False: each block replaces it)
    layernorm: str = "pre"  # "pre": LayerNorm before each branch and at the top; "none"


@dataclass(frozen=True)
class TrainingConfig:
    steps: int  # optimizer steps
    batch_size: int  # sentences per step
    lr: float  # peak learning rate
    warmup_steps: int  # linear warm-up, then cosine decay
    min_lr_ratio: float  # final lr = lr * min_lr_ratio
    beta1: float  # Adam momentum
    beta2: float  # Adam second-moment decay
    weight_decay: float  # decoupled (AdamW)
    grad_clip: float  # max global gradient norm; 0 = never clip
    dropout: float  # probability a unit of a block's output is dropped in training
    probe_every: int  # steps between probes
    attn_dropout: float = 0.0  # probability an attention weight is dropped (GPT-2 attn_pdrop)
    optimizer: str = "adamw"  # "adamw", "sgd" (plain steps) or "momentum" (SGD with momentum)
    momentum: float = 0.9  # the momentum optimizer's running-mean decay

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProbeConfig:
    n_sentences: int  # probe sentences per split
    story_sentences: list[str]  # shown in pictures and the story
    specialist_threshold: float  # head score above which a head may be a specialist


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    seed: int
    grammar: Grammar
    model: ModelShape
    training: TrainingConfig
    probes: ProbeConfig
    heldout_fraction: float
    text: str  # the TOML source, so a run can keep an exact copy


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    description: str
    path: Path


def scenarios_dir() -> Path:
    """Bundled scenarios: inside the installed package (wheel), else the checkout's scenarios/."""
    packaged = importlib.resources.files("fabric_cli") / "scenarios"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "scenarios"


def bundled_scenarios() -> list[ScenarioInfo]:
    infos = []
    for path in sorted(scenarios_dir().glob("*.toml")):
        try:
            description = load_scenario(str(path)).description
        except FabricError as exc:
            description = f"(broken: {exc.message})"
        infos.append(ScenarioInfo(path.stem, description, path))
    return infos


def _resolve(name_or_path: str) -> tuple[Path, str]:
    """(file, the name to use in messages) for a bundled name or a path."""
    looks_like_path = name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path
    if looks_like_path:
        return Path(name_or_path), name_or_path
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name_or_path):
        raise FabricError(f"scenario name {name_or_path!r} is not a name or a .toml path")
    path = scenarios_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        names = ", ".join(p.stem for p in sorted(scenarios_dir().glob("*.toml"))) or "none found"
        raise FabricError(
            f"unknown scenario {name_or_path!r}; bundled scenarios: {names} "
            "(or give the path to your own .toml file)"
        )
    return path, path.name


def _read(path: Path, source: str) -> str:
    try:
        if path.is_dir():
            raise FabricError(f"{source}: is a directory, not a scenario file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FabricError(f"{source}: too large for a scenario ({path.stat().st_size} bytes)")
        with open(path, "rb") as f:  # at most the limit: /dev/zero has no size to stat
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise FabricError(f"{source}: too large for a scenario (more than "
                              f"{MAX_FILE_BYTES:,} bytes)")
        return data.decode("utf-8")
    except FileNotFoundError:
        raise FabricError(
            f"{source}: no such file; `fabric scenarios` lists the bundled ones"
        ) from None
    except PermissionError:
        raise FabricError(f"{source}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise FabricError(f"{source}: not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise FabricError(f"{source}: cannot read: {exc.strerror or exc}") from None


def _parse_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise FabricError(f"{source}: nested too deeply to be a scenario") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        what = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        if found:
            where = f"line {found.group(1)}, column {found.group(2)}"
        else:
            where = f"line {text.count(chr(10)) + 1} (end of file)"
        raise FabricError(f"{source}: {where}: TOML syntax error: {what}") from None


def load_scenario(name_or_path: str) -> Scenario:
    path, source = _resolve(name_or_path)
    data, text = load_data(path, source)
    return parse_scenario(data, source, path, text)


MERGED_TABLES = ("model", "training", "probes")  # key by key; any other table is replaced


def load_data(path: Path, source: str, depth: int = 0) -> tuple[dict, str]:
    """The file's TOML, over its `base` (a bundled scenario) when it names one: the file's
    model, training and probes keys replace the base's one by one, its other tables and
    top-level keys replace the base's whole. Returns the data and its text: the file as it
    is, or for a file on a base, the merged tables as TOML (toml_text) under the file's own
    lines as comments, so a change to the base is a change to the scenario and a run's copy
    of it loads on its own."""
    text = _read(path, source)
    data = _parse_toml(text, source)
    if "base" not in data:
        return data, text
    name = data.pop("base")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise schema.schema_error(source, "base", "the name of a bundled scenario", name)
    if depth >= 3:
        raise FabricError(f"{source}: base: scenarios based on scenarios more than 3 deep")
    base_path = scenarios_dir() / f"{name}.toml"
    if not base_path.is_file() or base_path.resolve() == path.resolve():
        raise schema.schema_error(source, "base", "the name of another bundled scenario "
                                  "(see `fabric scenarios`)", name)
    merged, _ = load_data(base_path, base_path.name, depth + 1)
    for key, value in data.items():
        if key in MERGED_TABLES and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    header = (f"fabric's copy of {source}: the bundled scenario {name}, with this file's keys "
              f"over it.\nThe file itself:\n\n{text}")
    return merged, toml_text.dumps(merged, header)


def parse_scenario(data: dict, source: str, path: Path, text: str = "") -> Scenario:
    schema.check_keys(
        data,
        source,
        "",
        ("description", "seed", "heldout_fraction", "model", "training", "probes", "grammar"),
        ("description", "seed", "heldout_fraction", "model", "training", "probes", "grammar"),
    )
    description = schema.get_str(data, "description", source)
    if "\n" in description.strip():
        raise schema.schema_error(source, "description", "one line of text")
    seed = schema.get_int(data, "seed", source, minimum=0)
    heldout_fraction = schema.get_float(
        data, "heldout_fraction", source, low=0.0, high=0.5, low_open=True
    )
    model = _parse_model(schema.get_table(data, "model", source), source)
    training = _parse_training(schema.get_table(data, "training", source), source)
    probes = _parse_probes(schema.get_table(data, "probes", source), source)
    _check_size_bounds(model, training, probes, source)
    grammar = parse_grammar(schema.get_table(data, "grammar", source), source)
    _check_memory(model, training, probes, grammar, source)
    _check_against_grammar(grammar, model, probes, heldout_fraction, seed, source)
    return Scenario(
        name=path.stem,
        path=path,
        description=description.strip(),
        seed=seed,
        grammar=grammar,
        model=model,
        training=training,
        probes=probes,
        heldout_fraction=heldout_fraction,
        text=text,
    )


LAYERNORM_KINDS = ("pre", "none")
OPTIMIZERS = ("adamw", "sgd", "momentum")


def _parse_model(table: dict, source: str) -> ModelShape:
    keys = ("n_layers", "n_heads", "d_model", "d_mlp", "n_ctx")
    schema.check_keys(table, source, "model", (*keys, "residual", "layernorm"), keys)
    values: dict = {k: schema.get_int(table, k, source, "model") for k in keys}
    if "residual" in table:
        if not isinstance(table["residual"], bool):
            raise schema.schema_error(source, "model.residual", "true or false",
                                      table["residual"])
        values["residual"] = table["residual"]
    if "layernorm" in table:
        values["layernorm"] = _choice(table, "layernorm", LAYERNORM_KINDS, source, "model")
    if values["d_model"] % values["n_heads"]:
        raise schema.schema_error(
            source,
            "model.n_heads",
            f"a positive integer dividing model.d_model ({values['d_model']})",
            values["n_heads"],
        )
    return ModelShape(**values)


def _parse_training(table: dict, source: str) -> TrainingConfig:
    keys = tuple(TrainingConfig.__dataclass_fields__)
    optional = ("attn_dropout", "optimizer", "momentum")
    schema.check_keys(table, source, "training", keys,
                      tuple(k for k in keys if k not in optional))
    t = "training"
    steps = schema.get_int(table, "steps", source, t)
    warmup = schema.get_int(table, "warmup_steps", source, t, minimum=0)
    if warmup >= steps:
        raise schema.schema_error(
            source, "training.warmup_steps", f"fewer than training.steps ({steps})", warmup
        )
    probe_every = schema.get_int(table, "probe_every", source, t)
    if probe_every > steps:
        raise schema.schema_error(
            source, "training.probe_every", f"at most training.steps ({steps})", probe_every
        )
    return TrainingConfig(
        steps=steps,
        batch_size=schema.get_int(table, "batch_size", source, t),
        lr=schema.get_float(table, "lr", source, t, low=0.0, high=1.0, low_open=True),
        warmup_steps=warmup,
        min_lr_ratio=schema.get_float(table, "min_lr_ratio", source, t, low=0.0, high=1.0),
        beta1=schema.get_float(table, "beta1", source, t, low=0.0, high=1.0, high_open=True),
        beta2=schema.get_float(table, "beta2", source, t, low=0.0, high=1.0, high_open=True),
        weight_decay=schema.get_float(table, "weight_decay", source, t, low=0.0, high=1.0),
        grad_clip=schema.get_float(table, "grad_clip", source, t, low=0.0, high=float("inf")),
        dropout=schema.get_float(table, "dropout", source, t, low=0.0, high=1.0, high_open=True),
        probe_every=probe_every,
        attn_dropout=schema.get_float(table, "attn_dropout", source, t, low=0.0, high=1.0,
                                      high_open=True) if "attn_dropout" in table else 0.0,
        optimizer=(_choice(table, "optimizer", OPTIMIZERS, source, t)
                   if "optimizer" in table else "adamw"),
        momentum=schema.get_float(table, "momentum", source, t, low=0.0, high=1.0,
                                  high_open=True) if "momentum" in table else 0.9,
    )


def _choice(table: dict, key: str, choices: tuple[str, ...], source: str, prefix: str) -> str:
    value = table[key]
    if value not in choices:
        what = "one of " + ", ".join(f'"{c}"' for c in choices)
        raise schema.schema_error(source, f"{prefix}.{key}", what, value)
    return value


def _parse_probes(table: dict, source: str) -> ProbeConfig:
    keys = ("n_sentences", "story_sentences", "specialist_threshold")
    schema.check_keys(table, source, "probes", keys, keys)
    return ProbeConfig(
        n_sentences=schema.get_int(table, "n_sentences", source, "probes"),
        story_sentences=schema.get_str_list(table, "story_sentences", source, "probes"),
        specialist_threshold=schema.get_float(
            table, "specialist_threshold", source, "probes", low=0.0, high=1.0, low_open=True
        ),
    )


def _check_size_bounds(model: ModelShape, training: TrainingConfig, probes: ProbeConfig,
                       source: str) -> None:
    """Upper bounds first, then the memory training would need (limits.py), before anything
    is generated or allocated."""
    from fabric_cli import limits

    values = {f"model.{k}": v for k, v in asdict(model).items()}
    values.update({"training.steps": training.steps, "training.batch_size": training.batch_size,
                   "probes.n_sentences": probes.n_sentences})
    limits.check_bounds(values, source)


def _check_memory(model: ModelShape, training: TrainingConfig, probes: ProbeConfig,
                  grammar: Grammar, source: str) -> None:
    from fabric_cli import limits
    from fabric_cli.language.tokenizer import SPECIALS

    limits.check_memory(source, n_layers=model.n_layers, d_model=model.d_model,
                        d_mlp=model.d_mlp, n_heads=model.n_heads, n_ctx=model.n_ctx,
                        d_vocab=len(grammar.lexicon()) + len(SPECIALS),
                        batch_size=training.batch_size, probe_sentences=probes.n_sentences)


def _check_against_grammar(
    grammar: Grammar,
    model: ModelShape,
    probes: ProbeConfig,
    heldout_fraction: float,
    seed: int,
    source: str,
) -> None:
    from fabric_cli.language.generator import split_pairs  # the generator decides the pairs

    longest = grammar.max_length()
    if model.n_ctx < longest + 1:
        raise schema.schema_error(
            source,
            "model.n_ctx",
            f"at least {longest + 1} (the longest sentence, {longest} tokens, plus <bos>)",
            model.n_ctx,
        )
    lexicon = grammar.lexicon()
    for i, sentence in enumerate(probes.story_sentences):
        words = split_words(sentence)
        if len(words) + 1 > model.n_ctx:
            raise schema.schema_error(
                source,
                f"probes.story_sentences[{i}]",
                f"at most {model.n_ctx - 1} tokens to fit model.n_ctx",
                f"{len(words)} tokens",
            )
        unknown = [w for w in words if w not in lexicon]
        if unknown:
            raise FabricError(
                f"{source}: probes.story_sentences[{i}]: word {unknown[0]!r} is not in the "
                "grammar; add it to grammar.words with its part of speech"
            )
    pairs = split_pairs(grammar, heldout_fraction, seed)
    if not pairs["heldout"]:
        raise schema.schema_error(
            source,
            "heldout_fraction",
            "a fraction that holds out at least one noun pair while every noun keeps a training "
            "pair (add nouns, or raise the fraction)",
            heldout_fraction,
        )
