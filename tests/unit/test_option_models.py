"""The option models: the generated schemas and man page are current, a JSON schema
validator agrees with our own parsing, each kind knows its own options, and an
executable imports only its own side."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from plakar_mysql.core.kinds import BINLOG, LOGICAL, PHYSICAL, options_by_kind
from plakar_mysql.core.option_models import (
    MODELS,
    BinlogBackupOptions,
    BinlogRestoreOptions,
    LogicalBackupOptions,
    LogicalRestoreOptions,
    PhysicalBackupOptions,
    PhysicalRestoreOptions,
)
from plakar_mysql.core.options import ConfigError, OptionModel, json_schema, option_fields
from plakar_mysql.physical.restore import PhysicalExporter

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_options.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_options", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schemas_and_man_page_are_generated_from_the_models() -> None:
    gen = generator()
    assert gen.stale() == [], "out of date: run python scripts/gen_options.py"
    page = gen.render()
    for option in ("defaults_file", "lock_wait_timeout", "stop_datetime", "parallel", "flush"):
        assert f"\\fB{option}\\fR" in page
    assert "(boolean; default true)" in page  # defaults come from the models
    shipped = sorted(p.name for p in (ROOT / "src/plakar_mysql/schemas").glob("*.json"))
    assert shipped == sorted(f"{model.SCHEMA}.json" for model in MODELS)


def test_the_manifest_names_each_kind_s_own_schema() -> None:
    text = (ROOT / "packaging" / "manifest.yaml").read_text()
    for model in MODELS:
        protocols = ", ".join(model.SCHEMES)
        role = "importer" if model.SCHEMA.endswith("_backup") else "exporter"
        block = f"  - type: {role}\n"
        assert block in text
        entries = [e for e in text.split("  - type: ")[1:] if e.startswith(role)]
        matching = [e for e in entries if f"protocols: [{protocols}]" in e]
        assert len(matching) == 1, (model.NAME, entries)
        assert f"validator: ./{model.SCHEMA}.json" in matching[0]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.SCHEMA)
def test_generated_schema_is_valid_and_declares_each_option_once(
    model: type[OptionModel],
) -> None:
    schema = json_schema(model)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(schema["properties"]) == list(option_fields(model))
    assert schema["required"] == ["location"]
    for name, spec in schema["properties"].items():
        assert spec["description"] and "{" not in spec["description"], name


def _typed(model: type[OptionModel], config: Mapping[str, str]) -> dict[str, Any]:
    fields = option_fields(model)
    return {k: fields[k].convert(v) if k in fields else v for k, v in config.items()}


# Inputs that pass or fail on what a schema can say (no path, no server).
SAMPLES: list[tuple[type[OptionModel], dict[str, str]]] = [
    (LogicalBackupOptions, {"location": "mysql://h/db", "routines": "false", "port": "3307"}),
    (LogicalBackupOptions, {"location": "mariadb://h", "set_gtid_purged": "ON"}),
    (LogicalBackupOptions, {"location": "mysql://h", "set_gtid_purged": "sometimes"}),
    (LogicalBackupOptions, {"location": "mysql://h", "no_data": "1", "no_create_info": "yes"}),
    (LogicalBackupOptions, {"location": "mysql://h", "no_data": "1", "no_create_info": "no"}),
    (LogicalBackupOptions, {"location": "mysql://h", "bogus": "1", "port": "0"}),
    (LogicalBackupOptions, {"location": "mysql://h", "port": "0", "connect_timeout": "0"}),
    (LogicalBackupOptions, {"location": "mysql://h", "ssl_mode": "x", "tables": ""}),
    (LogicalBackupOptions, {"location": "http://h"}),
    (LogicalBackupOptions, {"location": "mysql+bin://h"}),
    (LogicalBackupOptions, {"location": "mysql://h", "password": ""}),
    (LogicalBackupOptions, {"location": "mysql://h", "parallel": "2"}),
    (LogicalRestoreOptions, {"location": "mysql://h", "jobs": "65"}),
    (LogicalRestoreOptions, {"location": "mysql://h", "jobs": "64", "definer": "current"}),
    (LogicalRestoreOptions, {"location": "mysql://h", "definer": "mine"}),
    (PhysicalBackupOptions, {"location": "mysql+bin://h", "parallel": "65"}),
    (PhysicalBackupOptions, {"location": "mysql+bin://h", "parallel": "8"}),
    (PhysicalBackupOptions, {"location": "mysql://h"}),
    (PhysicalRestoreOptions, {"location": "mysql+bin:///d", "bin_dir": ""}),
    (PhysicalRestoreOptions, {"location": "mysql+bin:///d"}),
    (BinlogBackupOptions, {"location": "mysql+binlog://h", "flush": "off"}),
    (BinlogBackupOptions, {"location": "mysql+binlog://h", "stop_datetime": "x"}),
    (BinlogRestoreOptions, {"location": "mysql+binlog://h", "lock_wait_timeout": "0"}),
    (BinlogRestoreOptions, {"location": "mysql+binlog://h", "stop_position": "0-1-2"}),
]


@pytest.mark.parametrize(("model", "config"), SAMPLES)
def test_a_schema_validator_and_the_parser_agree(
    model: type[OptionModel], config: dict[str, str]
) -> None:
    """What the generated schema refuses, the parser refuses, naming what a validator's
    best match names; what it accepts, the parser accepts."""
    best = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(json_schema(model)).iter_errors(_typed(model, config))
    )
    if best is None:
        model.parse(config)
        return
    with pytest.raises(ConfigError) as raised:
        model.parse(config)
    message = str(raised.value)
    assert "\n" not in message
    if best.validator == "additionalProperties":
        assert "unknown option" in message or "does not apply" in message
    elif best.validator == "not":
        assert "exclude each other" in message
    else:
        assert message.startswith(f"option {best.path[0]}:") or (
            best.path[0] == "location" and message.startswith("location ")
        ), (message, best.message)


def test_defaults_are_typed_attributes() -> None:
    backup = LogicalBackupOptions.parse({"location": "mysql://h"})
    assert (backup.single_transaction, backup.no_data, backup.set_gtid_purged) == (
        True,
        False,
        "AUTO",
    )
    assert (backup.port, backup.connect_timeout, backup.host) == (3306, 10, "h")
    assert BinlogBackupOptions.parse({"location": "mysql+binlog://h"}).flush is True
    replay = BinlogRestoreOptions.parse({"location": "mysql+binlog://h/shop"})
    assert (replay.databases, replay.stop_position, replay.lock_wait_timeout) == (
        ("shop",),
        None,
        30,
    )
    assert PhysicalBackupOptions.parse({"location": "mysql+bin://h"}).parallel == 1


def test_the_manifest_options_are_what_was_given() -> None:
    config = LogicalBackupOptions.parse(
        {"location": "mysql://u:pw@h:3310", "databases": "a, b", "hex_blob": "yes"}
    )
    assert config.databases == ("a", "b")
    assert dict(config.given) == {
        "location": "mysql://u:pw@h:3310",
        "host": "h",
        "port": 3310,
        "username": "u",
        "password": "pw",
        "databases": "a, b",
        "hex_blob": True,
    }
    assert "pw" not in repr(config)


def test_each_kind_s_options_come_from_its_model() -> None:
    backups = options_by_kind(backup=True)
    assert backups[LOGICAL] == frozenset(option_fields(LogicalBackupOptions))
    assert backups[PHYSICAL] - backups[LOGICAL] == {"parallel"}
    assert "flush" in backups[BINLOG] and "flush" not in backups[LOGICAL]
    restores = options_by_kind(backup=False)
    assert "stop_datetime" in restores[BINLOG] and "overwrite" in restores[LOGICAL]


def test_the_physical_restore_takes_only_its_location_and_tool_directory(
    tmp_path: Path,
) -> None:
    options: Any = None
    with pytest.raises(ConfigError, match=r"option jobs does not apply to mysql\+bin:// restores"):
        PhysicalExporter(options, "mysql+bin", {"location": "mysql+bin:///x", "jobs": "2"})
    with pytest.raises(ConfigError, match="disagree"):
        PhysicalRestoreOptions.parse(
            {"location": "mysql+bin:///x", "bin_dir": "/a", "mariadb_bin_dir": "/b"}
        )
    parsed = PhysicalRestoreOptions.parse({"location": "mysql+bin:///x", "mysql_bin_dir": "/a"})
    assert parsed.bin_dir == "/a"


@pytest.mark.parametrize(
    ("imports", "absent"),
    [
        (
            "plakar_mysql.entry; import kloset_sdk.entrypoint, kloset_sdk.importer; "
            "import plakar_mysql.logical.backup",
            [
                "jsonschema",
                "kloset_sdk.exporter",
                "kloset_sdk._pb.exporter_pb2",
                "plakar_mysql.logical.restore",
                "plakar_mysql.physical.backup",
                "plakar_mysql.binlog.backup",
            ],
        ),
        (
            "plakar_mysql.entry; import kloset_sdk.entrypoint, kloset_sdk.exporter; "
            "import plakar_mysql.logical.restore",
            [
                "jsonschema",
                "kloset_sdk.importer",
                "kloset_sdk._pb.importer_pb2",
                "plakar_mysql.logical.backup",
            ],
        ),
    ],
    ids=["logical backup", "logical restore"],
)
def test_an_executable_imports_only_its_own_side(imports: str, absent: list[str]) -> None:
    code = f"import sys; import {imports}; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert "plakar_mysql.core.option_models" in loaded
    assert not loaded & set(absent), loaded & set(absent)
