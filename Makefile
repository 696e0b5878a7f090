PY ?= python

.PHONY: install install-dev test test-fast lint bench

install:
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -r requirements.txt

# Test dependencies: Python packages plus Debian's Chromium for the browser tests
# (Playwright drives it through executable_path; it never downloads a browser).
install-dev: install
	$(PY) -m pip install -r requirements-dev.txt
	@command -v chromium >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null)

test: install-dev
	$(PY) -m ruff check .
	$(PY) -m pytest

test-fast:
	$(PY) -m pytest -m "not slow and not browser"

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
