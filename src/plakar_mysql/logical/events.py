"""Events, read with ``SHOW CREATE EVENT`` instead of by the dump tool.

``mariadb-dump`` 10.11 never ends on an event whose body holds ``;;`` (its
search for a delimiter the body does not contain never moves on), and stops
with an error on an event of a database whose name holds a quote.  Events are
definitions, not transactional data, so reading them just before the dump is
as consistent as reading them inside it.  Each is written the way the tools
write it (session state saved, set and put back around one ``CREATE``) with a
delimiter its body does not contain.
"""

from __future__ import annotations

from typing import Any

import pymysql

from plakar_mysql.core.server import quote_identifier

_DELIMITERS = (";;", "$$", "//", ";;;", "$$$", "///", "$;$", "/$/")


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _delimiter(body: str) -> str:
    for candidate in _DELIMITERS:
        if candidate not in body:
            return candidate
    raise ValueError("no delimiter fits this event's body")  # eight candidates: unreachable


def dump_events(db: pymysql.connections.Connection[Any], database: str, names: list[str]) -> bytes:
    """The statements that create ``names``, events of ``database``."""
    out: list[str] = []
    for name in names:
        with db.cursor() as cursor:
            cursor.execute(
                f"SHOW CREATE EVENT {quote_identifier(database)}.{quote_identifier(name)}"
            )
            row = cursor.fetchone()
        assert row is not None
        _, sql_mode, time_zone, create, charset, collation, _ = row
        delimiter = _delimiter(create)
        out += [
            f"--\n-- Event {quote_identifier(name)}\n--\n",
            f"/*!50106 DROP EVENT IF EXISTS {quote_identifier(name)} */;\n",
            "/*!50003 SET @saved_cs_client = @@character_set_client */ ;\n",
            "/*!50003 SET @saved_cs_results = @@character_set_results */ ;\n",
            "/*!50003 SET @saved_col_connection = @@collation_connection */ ;\n",
            "/*!50003 SET @saved_sql_mode = @@sql_mode */ ;\n",
            "/*!50003 SET @saved_time_zone = @@time_zone */ ;\n",
            f"/*!50003 SET character_set_client = {charset} */ ;\n",
            f"/*!50003 SET character_set_results = {charset} */ ;\n",
            f"/*!50003 SET collation_connection = {collation} */ ;\n",
            f"/*!50003 SET sql_mode = {_literal(sql_mode)} */ ;\n",
            f"/*!50003 SET time_zone = {_literal(time_zone)} */ ;\n",
            f"DELIMITER {delimiter}\n{create}{delimiter}\nDELIMITER ;\n",
            "/*!50003 SET time_zone = @saved_time_zone */ ;\n",
            "/*!50003 SET sql_mode = @saved_sql_mode */ ;\n",
            "/*!50003 SET character_set_client = @saved_cs_client */ ;\n",
            "/*!50003 SET character_set_results = @saved_cs_results */ ;\n",
            "/*!50003 SET collation_connection = @saved_col_connection */ ;\n",
        ]
    return "".join(out).encode()
