# corsadmin developer / CI entry points.
#
#   make run    create .venv if needed, install the app, serve it (HOST, PORT); prints
#               the admin URL and the command that creates the first operator
#   make test   install everything the tests need (venv + Debian chromium and
#               postgresql and mariadb-server when missing), then ruff, mypy, import-linter, the docs
#               build (make docs) and pytest (PYTEST_ARGS)
#   make lint   ruff + mypy + import-linter (the layers contract) only
#   make matrix the version matrix (noxfile.py): every combination of Flask,
#               Flask-SQLAlchemy, SQLAlchemy and Flask-CORS versions it lists, each in
#               its own venv under .nox/, the fast subset on SQLite; nox -s NAME for one
#   make docs   build the documentation site (docs/ -> docs/_build/html), warnings
#               (a broken internal link, a missing page) as errors; make test runs it
#   make clean  remove caches and build outputs (make distclean also drops .venv)
#
# Every step fails loudly: no recipe line ignores an error, so a pytest exit
# code (including 5, "no tests collected") fails the target.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 5000
# One pytest process per core, a test file's tests in one process (module fixtures,
# servers started per file); `make test PYTEST_ARGS="-p no:xdist -k origins"` for one.
PYTEST_ARGS ?= -n auto --dist loadfile
# The site's build: every warning is an error, all are reported, a fresh environment
# (an incremental build would not repeat an unchanged page's warnings).
SPHINX_BUILD := $(VENV)/bin/sphinx-build -W --keep-going -q -E -b html docs docs/_build/html

APP_STAMP := $(VENV)/.corsadmin-app.stamp
DEV_STAMP := $(VENV)/.corsadmin-dev.stamp

export DEBIAN_FRONTEND := noninteractive
export PIP_NO_INPUT := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Playwright must never fetch a browser of its own: tests use /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

# Root runs apt-get directly; anyone else goes through sudo when it exists.
SUDO := $(shell if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then echo sudo; fi)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: run test lint docs matrix pytest system-deps venv dev-venv clean distclean

# --- virtualenv ----------------------------------------------------------

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)

venv: $(APP_STAMP)
dev-venv: $(DEV_STAMP)

# The app alone (make run). A dev install that is newer than pyproject.toml
# already contains the app, so reuse it instead of running pip again.
$(APP_STAMP): pyproject.toml | $(VENV_PY)
	if [ -f $(DEV_STAMP) ] && [ $(DEV_STAMP) -nt pyproject.toml ]; then \
	  echo "corsadmin already installed in $(VENV) (dev install)"; \
	else \
	  $(VENV_PY) -m pip install --quiet -e '.[postgres,mysql]'; \
	fi
	touch $@

# The app plus everything tests and linters need (extras test + dev).
$(DEV_STAMP): pyproject.toml | $(VENV_PY)
	$(VENV_PY) -m pip install --quiet -e '.[dev]'
	touch $@

# --- system packages (Debian) --------------------------------------------

# Chromium for the browser tests, PostgreSQL and MariaDB servers for the database tests,
# curl for the API's example script (examples/preview-origin.sh) and iproute2 (ip)
# for the multi-host tests' network namespaces, from Debian's packages, installed
# only when missing.
system-deps:
	pkgs=""; \
	if [ ! -x /usr/bin/chromium ]; then pkgs="$$pkgs chromium"; fi; \
	if ! command -v curl >/dev/null; then pkgs="$$pkgs curl"; fi; \
	if [ ! -x /usr/sbin/ip ]; then pkgs="$$pkgs iproute2"; fi; \
	if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then pkgs="$$pkgs postgresql"; fi; \
	if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb-install-db >/dev/null; then pkgs="$$pkgs mariadb-server"; fi; \
	if [ -n "$$pkgs" ]; then \
	  if [ "$$(id -u)" -ne 0 ] && [ -z "$(SUDO)" ]; then \
	    echo "error: need root or sudo to install:$$pkgs" >&2; exit 1; \
	  fi; \
	  echo "installing Debian packages:$$pkgs"; \
	  $(APT_GET) update; \
	  $(APT_GET) install -y $$pkgs; \
	fi; \
	test -x /usr/bin/chromium || { echo "error: /usr/bin/chromium still missing" >&2; exit 1; }; \
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
	  || { echo "error: no initdb under /usr/lib/postgresql/*/bin" >&2; exit 1; }; \
	command -v curl >/dev/null || { echo "error: curl still missing" >&2; exit 1; }; \
	test -x /usr/sbin/mariadbd || { echo "error: /usr/sbin/mariadbd still missing" >&2; exit 1; }; \
	test -x /usr/sbin/ip || { echo "error: /usr/sbin/ip (iproute2) still missing" >&2; exit 1; }

# --- targets ---------------------------------------------------------------

run: $(APP_STAMP)
	exec $(VENV_PY) manage.py run --host $(HOST) --port $(PORT)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

docs: $(DEV_STAMP)
	$(SPHINX_BUILD)

pytest: $(DEV_STAMP) system-deps
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

test: $(DEV_STAMP) system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(SPHINX_BUILD)
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

# The versions users have (noxfile.py; make test runs the full suite on the newest).
matrix: $(DEV_STAMP)
	$(VENV)/bin/nox

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts .nox
	rm -rf docs/_build
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -f $(APP_STAMP) $(DEV_STAMP)

distclean: clean
	rm -rf $(VENV)
