"""Write the package's option schemas and the man page from the option models.

Every option is declared once, with its type, default, bounds and description,
in the models of :mod:`plakar_mysql.core.option_models`.  This script writes
from them the JSON schemas shipped in the package
(``src/plakar_mysql/schemas/<kind>_<role>.json``, each connector's
``validator`` in the package manifest) and the man page
``docs/plakar-mysql.1``, so that neither can drift from what the connectors
accept.  A file is rewritten only when its text changes.  ``--check`` writes
nothing and exits 1 when a committed file differs from what the models give
(the unit tests run it); ``make build`` runs the script first.

    python scripts/gen_options.py            # rewrite what changed
    python scripts/gen_options.py --check    # compare only
"""

from __future__ import annotations

import json
import sys
from dataclasses import MISSING
from pathlib import Path

from plakar_mysql import __version__
from plakar_mysql.core.option_models import MODELS
from plakar_mysql.core.options import OptionField, OptionModel, json_schema, option_fields

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "plakar-mysql.1"
SCHEMAS = ROOT / "src" / "plakar_mysql" / "schemas"

HEAD = r""".TH PLAKAR-MYSQL 1 "" "plakar-mysql {version}" "Plakar integrations"
.SH NAME
plakar-mysql \- MySQL and MariaDB backups for Plakar: logical, physical and binary logs
.SH SYNOPSIS
.B plakar
.B at
.I store
.B backup
.RB [ \-o
.IR key = value ]...
.I location
.br
.B plakar
.B at
.I store
.B restore \-to
.I location
.RB [ \-o
.IR key = value ]...
.IR snapshot [: path ]
.SH DESCRIPTION
The package
.B mysql-mariadb
gives Plakar an importer and an exporter for three kinds of backup, chosen by
the scheme of the location:
.TP
.B mysql://\fR[\fIuser\fR[:\fIpassword\fR]@]\fIhost\fR[:\fIport\fR][/\fIdatabase\fR]
A logical backup through the server's own dump tool, one SQL file per table
and kind of object; restored through the stock client.
.B mariadb://
and
.B mysql+mariadb://
are the same.
.TP
.B mysql+bin://\fR[\fIuser\fR@]\fIhost\fR[:\fIport\fR]
A physical hot backup of the data directory with
.BR mariadb-backup ,
run on the server's machine; restored with
.B \-to mysql+bin:///\fIpath/to/empty/dir\fR
as a prepared data directory.
.TP
.B mysql+binlog://\fR[\fIuser\fR@]\fIhost\fR[:\fIport\fR]
An archive of every binary log the server holds; restored by replaying them
into a running server up to a time or a position.
.PP
Booleans are true or false (also 1/0, yes/no, on/off).  An unknown option, a
value of the wrong type or a path that names nothing usable is a one-line
error before anything connects.  Passwords reach the tools through an option
file in a pipe, never on a command line or in the environment; prefer
.B defaults_file
to
.B password
on plakar's own command line.
"""

TAIL = r""".SH EXAMPLES
With the two accounts of the README (section Accounts):
.B plakar_backup
backs up, its credentials in
.IR ~/.plakar\-backup.cnf ;
.B plakar_restore
restores, in
.IR ~/.plakar\-restore.cnf ;
each file 0600, so that no password is on a command line.
.PP
.nf
plakar at /var/backups backup \-o defaults_file=$HOME/.plakar\-backup.cnf mysql://db.example.com/shop
plakar at /var/backups restore \-to mysql://db2.example.com/shop_copy \e
    \-o defaults_file=$HOME/.plakar\-restore.cnf SNAPSHOT
plakar at /var/backups backup \-o defaults_file=$HOME/.plakar\-backup.cnf \e
    \-o socket=/run/mysqld/mysqld.sock mysql+bin://localhost
plakar at /var/backups restore \-to mysql+bin:///var/lib/mysql\-restored SNAPSHOT
plakar at /var/backups backup \-o defaults_file=$HOME/.plakar\-backup.cnf mysql+binlog://db.example.com
plakar at /var/backups restore \-to mysql+binlog://db3.example.com \e
    \-o defaults_file=$HOME/.plakar\-restore.cnf \-o stop_datetime='2026\-11\-30 14:02:59' SNAPSHOT
.fi
.SH EXIT STATUS
plakar exits non-zero when a backup or a restore fails; a failed backup leaves
no snapshot.
.SH FILES
.TP
.I /manifest.json
what a snapshot is: server, tool, options, binary-log coordinates, files.
.TP
.I /databases/<db>/tables/<table>.sql
one table of a logical backup.
.TP
.I /datadir/...
the data directory of a physical backup.
.TP
.I /binlog/<file>
one binary log.
.SH SEE ALSO
.BR plakar (1),
.BR mariadb-dump (1),
.BR mariadb-backup (1),
.BR mariadb-binlog (1);
docs/logical.md, docs/physical.md, docs/binlog.md in the source tree.
"""


def _escape(text: str) -> str:
    """Roff-safe text: backslashes doubled, no line starting with a control character."""
    text = text.replace("\\", "\\e")
    return "\n".join(
        "\\&" + line if line[:1] and line[:1] in ".'" else line for line in text.split("\n")
    )


def _facts(item: OptionField) -> str:
    facts = []
    if item.choices is not None:
        facts.append("one of " + ", ".join(item.choices))
    elif item.kind in ("integer", "boolean"):
        facts.append(item.kind)
    elif item.kind == "list":
        facts.append("comma-separated")
    if item.spec.minimum is not None or item.spec.maximum is not None:
        facts.append(f"{item.spec.minimum} to {item.spec.maximum}")
    default = item.default
    if default not in (None, (), MISSING):
        facts.append(f"default {str(default).lower() if isinstance(default, bool) else default}")
    return f" ({'; '.join(facts)})" if facts else ""


def _options(model: type[OptionModel]) -> str:
    lines = []
    for name, item in sorted(option_fields(model).items()):
        lines.append(".TP")
        lines.append(f"\\fB{name}\\fR")
        lines.append(_escape(model.describe(name, item.spec)) + _escape(_facts(item)))
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole page, from the models."""
    parts = [HEAD.format(version=__version__)]
    for model in MODELS:
        parts.append(f".SH {model.NAME.upper()} OPTIONS ({model.locations()})\n")
        parts.append(_options(model))
    parts.append(TAIL)
    return "".join(parts)


def outputs() -> dict[Path, str]:
    """Every generated file and its text."""
    files = {
        SCHEMAS / f"{model.SCHEMA}.json": json.dumps(json_schema(model), indent=2) + "\n"
        for model in MODELS
    }
    files[PAGE] = render()
    return files


def stale() -> list[Path]:
    """The generated files that are missing or differ from what the models give, and
    the schemas no model gives any more."""
    files = outputs()
    changed = [
        path
        for path, text in files.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    return changed + sorted(set(SCHEMAS.glob("*.json")) - set(files))


def main(argv: list[str]) -> int:
    if "--check" in argv:
        old = stale()
        for path in old:
            print(f"{path} is out of date: run python scripts/gen_options.py", file=sys.stderr)
        return 1 if old else 0
    files = outputs()
    for path in stale():
        if path in files:
            path.write_text(files[path], encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
        else:
            path.unlink()
            print(f"removed {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
