# Plakar integration for MySQL/MariaDB.
#
#   make deps       MariaDB server, client and mariadb-backup (apt), only when missing,
#                   and MySQL (make mysql)
#   make mysql      MySQL server and clients from Debian sid in build/mysql-sid (once;
#                   scripts/mysql_tree.sh), run through wrappers in build/mysql-sid/bin
#   make test-deps  and for the storage tests: sshd, sshfs, s3fs (apt)
#   make venv       .venv with the project and its [dev] extra, plus the
#                   generated gRPC modules in src/kloset_sdk/_pb/
#   make build      bin/plakar (the pinned Plakar CLI) and the Plakar package
#                   dist/<name>_<version>_<os>_<arch>.ptar, after the option
#                   schemas and the man page (scripts/gen_options.py)
#   make lint       ruff check + ruff format --check
#   make typecheck  mypy --strict
#   make test       all of the above and bin/versitygw (an S3 server), then pytest
#   make demo       scripts/demo.py
#   make bench      python -m bench: backup, dedup, restore, memory, binlog replay; report and chart
#                   (BENCH_ARGS="backup restore --flavour mysql --official-ptar PTAR": on MySQL)
#   make clean      build outputs (keeps .venv and build/mysql-sid; `make distclean`
#                   drops them too)
#
# Every target installs what it needs and does nothing when up to date.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory
.DELETE_ON_ERROR:

# Interpreter the venv is made from: 3.11, as pinned by pyproject.toml.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
GO ?= go
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

VENV := .venv
VPY := $(VENV)/bin/python
INSTALL_STAMP := $(VENV)/.stamp-install
PROTOS_STAMP := $(VENV)/.stamp-protos
PB_INIT := src/kloset_sdk/_pb/__init__.py

PLAKAR := bin/plakar
VERSITYGW := bin/versitygw
PLAKAR_MOD := tools/plakar/go.mod tools/plakar/go.sum tools/plakar/tools.go \
	$(wildcard tools/plakar/ttlmap/*)

# Package file name, as plakar expects it: <name>_<version>_<os>_<arch>.ptar
PKG_NAME := $(shell sed -n 's/^name:[[:space:]]*//p' packaging/manifest.yaml)
VERSION ?= $(shell sed -n 's/^version[[:space:]]*=[[:space:]]*"\(.*\)"/\1/p' pyproject.toml | head -n1)
PKG_VERSION := v$(patsubst v%,%,$(VERSION))
GOOS := $(shell $(GO) env GOOS 2>/dev/null)
GOARCH := $(shell $(GO) env GOARCH 2>/dev/null)
PTAR := dist/$(PKG_NAME)_$(PKG_VERSION)_$(GOOS)_$(GOARCH).ptar
STAGED := build/pkg/mysql-importer build/pkg/mysql-exporter
PKG_INPUTS := pyproject.toml packaging/manifest.yaml packaging/build_ptar.py \
	packaging/launch_importer.py packaging/launch_exporter.py scripts/gen_options.py \
	$(shell find src -type f \( -name '*.py' -o -name '*.pyi' -o -name '*.json' \) \
		-not -path '*/__pycache__/*' 2>/dev/null)

LINT_PATHS := src tests scripts packaging bench

.PHONY: all deps mysql test-deps venv build lint typecheck test demo bench clean distclean FORCE

all: build

# --- system packages --------------------------------------------------------

deps: mysql
	@if ! { command -v mariadbd || [ -x /usr/sbin/mariadbd ]; } >/dev/null 2>&1 \
	   || ! command -v mariadb-dump >/dev/null 2>&1 \
	   || ! command -v mariadb-backup >/dev/null 2>&1; then \
		echo "deps: installing mariadb-server mariadb-client mariadb-backup"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$(SUDO) apt-get update -qq; \
		$(SUDO) apt-get install -y -qq --no-install-recommends \
			mariadb-server mariadb-client mariadb-backup >/dev/null; \
	fi

# Oracle's MySQL for the tests that run on both flavours (src/plakar_mysql_harness/mysql.py):
# Debian 12 has none, so Debian sid's is unpacked into a private tree, once.
MYSQL_DIR := build/mysql-sid
mysql:
	@scripts/mysql_tree.sh $(MYSQL_DIR)

# The storage servers and mounts of tests/test_storage_backends.py: OpenSSH's
# sshd with sshfs (SFTP), s3fs (S3; the server itself is bin/versitygw).
test-deps: deps
	@if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null 2>&1 \
	   || ! command -v sshfs >/dev/null 2>&1 || ! command -v s3fs >/dev/null 2>&1; then \
		echo "test-deps: installing openssh-server openssh-client sshfs s3fs"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$(SUDO) apt-get update -qq; \
		$(SUDO) apt-get install -y -qq --no-install-recommends \
			openssh-server openssh-client sshfs s3fs >/dev/null; \
	fi

# --- Python environment -----------------------------------------------------

$(VPY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' \
		|| { echo "venv: $(PYTHON) is older than Python 3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(INSTALL_STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

# The generated modules are regenerated when the protocol pin (go.sum), the
# generator or the dependencies change, and whenever they are missing.
$(PROTOS_STAMP): $(INSTALL_STAMP) pyproject.toml tools/plakar/go.sum scripts/gen_protos.py \
		$(if $(wildcard $(PB_INIT)),,FORCE)
	$(VPY) scripts/gen_protos.py
	@touch $@

venv: $(PROTOS_STAMP)
	@:

# --- Plakar and the package -------------------------------------------------

$(PLAKAR): $(PLAKAR_MOD)
	@mkdir -p $(@D)
	@echo "go build: $@ (first time takes a few minutes)"
	cd tools/plakar && $(GO) build -o ../../$@ github.com/PlakarKorp/plakar
	@touch $@

$(PTAR): $(PLAKAR) $(PROTOS_STAMP) $(PKG_INPUTS) \
		$(if $(and $(wildcard build/pkg/mysql-importer),$(wildcard build/pkg/mysql-exporter)),,FORCE)
	$(VPY) scripts/gen_options.py
	$(VPY) packaging/build_ptar.py --plakar $(PLAKAR) --version $(PKG_VERSION) --out $@

build: $(PLAKAR) $(PTAR)
	@:

# An S3-compatible object store for the tests: the Versity S3 Gateway, pinned
# in tools/versitygw/go.mod.
$(VERSITYGW): tools/versitygw/go.mod tools/versitygw/go.sum tools/versitygw/tools.go
	@mkdir -p $(@D)
	@echo "go build: $@"
	cd tools/versitygw && $(GO) build -o ../../$@ github.com/versity/versitygw/cmd/versitygw
	@touch $@

# --- checks -----------------------------------------------------------------

lint: venv
	$(VPY) -m ruff check $(LINT_PATHS)
	$(VPY) -m ruff format --check $(LINT_PATHS)

typecheck: venv
	$(VPY) -m mypy
	$(VPY) -m mypy packaging
	$(VPY) -m mypy --strict bench

# pytest's own exit status is the verdict: 5 ("no tests collected") fails.
# TEST_JOBS pytest workers (pytest-xdist), a test file each at a time: most
# tests wait on plakar and servers, so two workers shorten the run on 2 CPUs.
TEST_JOBS ?= 2
test: test-deps mysql venv build $(VERSITYGW) lint typecheck
	$(VPY) -m pytest -n $(TEST_JOBS) --dist loadfile --durations=15

demo: deps venv build
	$(VPY) scripts/demo.py

# BENCH_ARGS: e.g. "--sizes-mb 10 --runs 1 --quiet-timeout 0" for a quick check
# of the whole chain, "backup" or "restore" for one benchmark, "--flavour mysql"
# for backup and restore on make mysql's MySQL (deps builds the tree).
ifneq ($(wildcard bench/.),)
bench: deps venv build
	@{ command -v myloader && command -v restic; } >/dev/null 2>&1 || { \
		echo "bench: installing mydumper and restic (contenders)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ $(SUDO) apt-get update -qq && \
		  $(SUDO) apt-get install -y -qq --no-install-recommends mydumper restic; } \
		  >/dev/null 2>&1 \
		|| echo "bench: mydumper or restic could not be installed: left out"; }
	$(VPY) -m bench $(BENCH_ARGS)
else
bench:
	@echo "bench: no benchmarks yet (no bench/ directory)"
endif

# The MySQL tree is a download (650 MB), kept like .venv.
clean:
	[ ! -d build ] || find build -mindepth 1 -maxdepth 1 \
		! -name $(notdir $(MYSQL_DIR)) ! -name .$(notdir $(MYSQL_DIR)).lock -exec rm -rf {} +
	rm -rf dist bin src/kloset_sdk/_pb $(PROTOS_STAMP) \
		.mypy_cache .pytest_cache .ruff_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) src/*.egg-info build

FORCE:
