"""MySQL and MariaDB integration for Plakar: logical backups through the servers' own dump tools."""

__version__ = "0.1.0"
