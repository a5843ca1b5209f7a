# gateway: `make run` starts every protocol on unprivileged ports; `make test` runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= etc/gateway.ini
STAMP   = $(VENV)/.installed

.PHONY: install run test lint tools fuzz bench clean

# The virtual environment, with gateway installed in it (editable, so the
# twistd plugin in twisted/plugins is found), and Twisted's plugin cache
# regenerated afterwards.
$(STAMP): setup.cfg setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable '.[test]' --config-settings editable_mode=compat
	$(BIN)/python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"
	touch $@

install: $(STAMP)

# Creates a self-signed certificate and the demo domain/account when missing,
# then runs the server in the foreground.
run: install
	$(BIN)/gatewayctl --config $(CONFIG) init-demo
	$(BIN)/twistd --nodaemon --pidfile= gateway --config $(CONFIG)

lint: install
	$(BIN)/ruff check gateway tests bench

# The clients the end-to-end tests drive besides Python's own: curl and lftp,
# from Debian when missing (as root); without them those tests are skipped.
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
tools:
	@command -v curl >/dev/null && command -v lftp >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { $(APT_INSTALL) curl lftp >/dev/null || { apt-get update -q >/dev/null && $(APT_INSTALL) curl lftp >/dev/null; }; }; } || \
	  echo "curl or lftp could not be installed: their end-to-end tests will be skipped"

test: lint tools
	rm -rf tests.test_*/ _trial_temp
	$(BIN)/python -m pytest -q tests

# The fuzz tests at length (a nightly-style run): GATEWAY_FUZZ_EXAMPLES
# examples per test (default 5000), new ones each run.
fuzz: install
	GATEWAY_FUZZ=long $(BIN)/python -m pytest -q tests/test_fuzz_*.py

bench: install
	$(BIN)/python bench/store.py

clean:
	rm -rf $(VENV) build dist *.egg-info
