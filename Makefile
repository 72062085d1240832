# The two set-up commands: `make demo` and `make test`. Both work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export OMP_WAIT_POLICY := PASSIVE
export UV_PYTHON := $(PYTHON)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench clean chromium wrk

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv>=0.5"

demo: $(UV)
	$(UV) sync --frozen
	.venv/bin/loopml demo demo-project

# The browser tests open reports in Debian's chromium; Playwright never downloads a browser.
chromium:
	@test -x /usr/bin/chromium || ( $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium )

test: $(UV) chromium
	$(UV) sync --frozen --extra test
	.venv/bin/lint-imports
	.venv/bin/pytest

# bench/serve.py drives the servers with wrk, from Debian's packages.
wrk:
	@command -v wrk >/dev/null || ( $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk )

bench: $(UV) wrk
	$(UV) sync --frozen --extra test --extra bench
	.venv/bin/python bench/run.py

clean:
	rm -rf .venv .tools demo-project .pytest_cache bench/results/*.tmp
