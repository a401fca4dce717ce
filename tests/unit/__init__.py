"""Unit tests of pure code: parsers, argument building, path and header mapping."""
