"""Test support code: throwaway MariaDB servers and database comparison."""
