# Two commands on a fresh machine: `make run` (local mode with the stand-ins) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := requirements.txt requirements.in requirements-dev.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | cksum | cut -d' ' -f1)

.PHONY: run test bench browser-deps clean lock

# pip's hash-checking mode refuses a mix of hashed and unhashed requirements in one run: the lock (what the deploy
# installs) goes in first with --require-hashes, then the development tools in a second run.
$(STAMP): $(REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser of its own).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium; the browser tests will be skipped"; }

run: $(STAMP)
	W365_MODE=local $(PY) -m standins.devhost serve

test: $(STAMP) browser-deps
	$(PY) -m pytest
	@if command -v node >/dev/null 2>&1; then node --test webresources/tests/ tests/pages/; else echo "node not found: ribbon and page script tests skipped"; fi

bench: $(STAMP)
	$(PY) -m bench

# requirements.txt from requirements.in: every runtime package pinned with the hashes of all its files on the index.
lock: $(STAMP)
	PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= $(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.txt requirements.in

clean:
	rm -rf $(VENV) .pytest_cache local
