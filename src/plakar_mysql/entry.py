"""Executable entry points: one for the importer, one for the exporter."""


def importer_main() -> None:
    raise SystemExit("not implemented yet")


def exporter_main() -> None:
    raise SystemExit("not implemented yet")
