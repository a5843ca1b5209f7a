# gateway: `make run` starts every protocol on unprivileged ports; `make test` runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= etc/gateway.ini
STAMP   = $(VENV)/.installed

.PHONY: install run test lint tools fuzz bench bench-tools imaptest clean

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

# Postfix for the LMTP end-to-end test (tests/test_lmtp_postfix.py), from
# Debian when missing (as root), preseeded "No configuration" so that
# installing it configures and starts no system mail server.
.PHONY: postfix-tool
tools: postfix-tool
postfix-tool:
	@[ -x /usr/sbin/postfix ] || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections && \
	    { $(APT_INSTALL) postfix >/dev/null || { apt-get update -q >/dev/null && $(APT_INSTALL) postfix >/dev/null; }; }; } || \
	  echo "postfix could not be installed: its end-to-end test will be skipped"

# Creates a self-signed certificate and the demo domain/account when missing,
# then runs the server in the foreground.
run: install
	$(BIN)/gatewayctl --config $(CONFIG) init-demo
	$(BIN)/twistd --nodaemon --pidfile= gateway --config $(CONFIG)

lint: install
	$(BIN)/ruff check gateway tests bench

# The clients the end-to-end tests drive besides Python's own: curl, lftp,
# mbsync (isync, with the Cyrus SASL modules), fetchmail and mutt (run in
# tmux), and Dovecot's doveadm (reads our dovecot-acl files), from Debian
# when missing (as root); without them those tests are skipped.
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
TOOLS = curl lftp isync libsasl2-modules fetchmail mutt tmux dovecot-core
tools:
	@command -v curl >/dev/null && command -v lftp >/dev/null && command -v mbsync >/dev/null && \
	  command -v fetchmail >/dev/null && command -v mutt >/dev/null && command -v tmux >/dev/null && \
	  command -v doveadm >/dev/null && ls /usr/lib/*/sasl2/libscram.so >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { $(APT_INSTALL) $(TOOLS) >/dev/null || { apt-get update -q >/dev/null && $(APT_INSTALL) $(TOOLS) >/dev/null; }; }; } || \
	  echo "some of $(TOOLS) could not be installed: their end-to-end tests will be skipped"

test: lint tools
	rm -rf tests.test_*/ _trial_temp
	$(BIN)/python -m pytest -q tests

# The fuzz tests at length (a nightly-style run): GATEWAY_FUZZ_EXAMPLES
# examples per test (default 5000), new ones each run.
fuzz: install
	GATEWAY_FUZZ=long $(BIN)/python -m pytest -q tests/test_fuzz_*.py

bench: install bench-tools
	$(BIN)/python bench/store.py

# The peers the benchmarks run beside gateway: Dovecot's IMAP and LMTP
# servers, from Debian when missing (as root); without them the benchmarks
# run gateway alone and say so.
BENCH_TOOLS = dovecot-imapd dovecot-lmtpd
bench-tools:
	@test -x /usr/lib/dovecot/imap -a -x /usr/lib/dovecot/lmtp || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { $(APT_INSTALL) $(BENCH_TOOLS) >/dev/null || { apt-get update -q >/dev/null && $(APT_INSTALL) $(BENCH_TOOLS) >/dev/null; }; }; } || \
	  echo "$(BENCH_TOOLS) could not be installed: the benchmarks will run without Dovecot"

# Dovecot's imaptest, for bench/imaptest.py (built from source: Debian has
# no package); IMAPTEST_GIT=... names a local clone where GitHub is out of reach.
imaptest: bench-tools
	bench/build-imaptest.sh

clean:
	rm -rf $(VENV) build dist *.egg-info

# systemd-analyze and logrotate, which check etc/gateway.service and
# etc/gateway.logrotate, from Debian when missing (as root); without them
# those tests are skipped.
tools: tools-service
tools-service:
	@command -v systemd-analyze >/dev/null && command -v logrotate >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { $(APT_INSTALL) systemd logrotate >/dev/null || \
	      { apt-get update -q >/dev/null && $(APT_INSTALL) systemd logrotate >/dev/null; }; }; } || \
	  echo "systemd-analyze or logrotate could not be installed: the checks of etc/ will be skipped"

# The manual pages in docs/, from the argument parsers and the configuration
# schema (a test checks they are up to date): man -l docs/gatewayctl.8
.PHONY: man tools-service
man: install
	$(BIN)/python -m gateway.manpage docs
