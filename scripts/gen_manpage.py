"""Write the man page ``docs/plakar-mysql.1`` from the package's option schemas.

Every option is declared once, with its description, in
``src/plakar_mysql/schemas/*.json``; the page is made from them so that it
cannot drift from what the connectors accept.  ``--check`` exits 1 when the
committed page differs from what the schemas give (the unit tests run it).

    python scripts/gen_manpage.py            # rewrite docs/plakar-mysql.1
    python scripts/gen_manpage.py --check    # compare only
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from plakar_mysql import __version__
from plakar_mysql.core.options import load_schema
from plakar_mysql.physical.backup import OPTIONS as PHYSICAL_BACKUP_OPTIONS
from plakar_mysql.physical.restore import OPTIONS as PHYSICAL_RESTORE_OPTIONS

PAGE = Path(__file__).resolve().parent.parent / "docs" / "plakar-mysql.1"

#: (schema, section title, options that mysql+bin:// takes too)
SECTIONS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("importer", "BACKUP OPTIONS (mysql://, mysql+bin://)", PHYSICAL_BACKUP_OPTIONS),
    ("exporter", "RESTORE OPTIONS (mysql://, mysql+bin://)", PHYSICAL_RESTORE_OPTIONS),
    ("binlog_importer", "BINARY-LOG ARCHIVE OPTIONS (mysql+binlog://, backup)", frozenset()),
    ("binlog_exporter", "BINARY-LOG REPLAY OPTIONS (mysql+binlog://, restore)", frozenset()),
)

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
    return "\n".join("\\&" + line if line[:1] in ".'" else line for line in text.split("\n"))


def _facts(spec: Mapping[str, Any]) -> str:
    facts = []
    if "enum" in spec:
        facts.append("one of " + ", ".join(str(v) for v in spec["enum"]))
    elif spec.get("type") in ("integer", "boolean"):
        facts.append(str(spec["type"]))
    if "minimum" in spec or "maximum" in spec:
        facts.append(f"{spec.get('minimum', '')} to {spec.get('maximum', '')}")
    if "default" in spec:
        default = spec["default"]
        facts.append(f"default {str(default).lower() if isinstance(default, bool) else default}")
    return f" ({'; '.join(facts)})" if facts else ""


def _options(schema: str, physical: Iterable[str]) -> str:
    properties: Mapping[str, Mapping[str, Any]] = load_schema(schema)["properties"]
    also = set(physical)
    lines = []
    for name in sorted(properties):
        spec = properties[name]
        lines.append(".TP")
        lines.append(f"\\fB{name}\\fR" + (" \\fI(also mysql+bin)\\fR" if name in also else ""))
        lines.append(_escape(str(spec.get("description", ""))) + _escape(_facts(spec)))
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole page, from the schemas."""
    parts = [HEAD.format(version=__version__)]
    for schema, title, physical in SECTIONS:
        parts.append(f".SH {title}\n")
        parts.append(_options(schema, physical))
    parts.append(TAIL)
    return "".join(parts)


def main(argv: list[str]) -> int:
    page = render()
    if "--check" in argv:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != page:
            print(f"{PAGE} is out of date: run python scripts/gen_manpage.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
