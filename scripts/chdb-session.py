#!/usr/bin/env python3
"""A chDB (current ClickHouse, embedded) session that another process drives by lines.

    .services/chdb-venv/bin/python scripts/chdb-session.py DATA_DIR

Keeps one `chdb.session.Session` whose data lives in DATA_DIR, so databases and tables
persist from one request to the next. Reads one JSON request per line on stdin and writes
one JSON answer per line on stdout, in order, until stdin closes:

    {"sql": "SELECT ..."}
        -> {"ok": true, "data": {"meta": [...], "data": [[...], ...]}}
           the result as JSONCompact, parsed; "data": null for a statement that
           returns nothing (CREATE, INSERT, USE, ...)
    {"sql": "INSERT INTO t (a, b) FORMAT JSONEachRow", "file": "/path/rows.ndjson"}
        -> {"ok": true, "data": null, "rows_written": N}
           the statement a client sends with the rows as its body (the same SQL), run
           as `... FROM INFILE '/path/rows.ndjson' FORMAT JSONEachRow`: columns left
           out get their defaults, as over HTTP
    anything that fails -> {"ok": false, "error": "..."}; the session goes on.

The server's time zone is UTC, as in the ClickHouse that scripts/services configures.
Install chDB with `scripts/services tools`. Standard library and chdb only.
"""

import json
import os
import re
import sys
import time

# The process time zone is the server's: set before ClickHouse starts inside chdb.
os.environ["TZ"] = "UTC"
time.tzset()

from chdb.session import Session  # noqa: E402  (after the time zone)

# `INSERT ... FORMAT name` at the end of a statement, the rows' format.
FORMAT_AT_END = re.compile(r"^(?P<head>.*?)\s+FORMAT\s+(?P<format>\w+)\s*;?\s*$", re.I | re.S)


def quoted(text):
    """A ClickHouse single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def answer_to(session, request):
    if not isinstance(request, dict) or not isinstance(request.get("sql"), str):
        raise ValueError('a request is an object with a string "sql" (and maybe "file")')
    sql = request["sql"]
    path = request.get("file")
    if path is not None:
        if not isinstance(path, str):
            raise ValueError('"file" is a path')
        if not os.path.isfile(path):
            raise ValueError(f"no file {path}")
        m = FORMAT_AT_END.match(sql)
        if not m or not m.group("head").lstrip().upper().startswith("INSERT"):
            raise ValueError('with "file", "sql" is an INSERT ending in FORMAT <name>')
        sql = f"{m.group('head')} FROM INFILE {quoted(path)} FORMAT {m.group('format')}"
        result = session.query(sql, "JSONCompact")
        return {"ok": True, "data": None, "rows_written": result.rows_written()}
    result = session.query(sql, "JSONCompact")
    text = result.bytes().decode("utf-8", errors="replace")
    if not text.strip():
        return {"ok": True, "data": None}
    doc = json.loads(text)
    return {"ok": True, "data": {"meta": doc.get("meta", []), "data": doc.get("data", [])}}


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DATA_DIR")
    # Answers go to a private copy of stdout; whatever the engine itself prints on fd 1
    # lands on stderr instead of in the middle of an answer.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    session = Session(sys.argv[1])
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                answer = answer_to(session, json.loads(line))
            except Exception as e:  # a bad request or query is an answer, never the end
                answer = {"ok": False, "error": f"{type(e).__name__}: {e}".strip()}
            answers.write(json.dumps(answer) + "\n")
            answers.flush()
    finally:
        session.close()


if __name__ == "__main__":
    main()
