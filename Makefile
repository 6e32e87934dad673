# cuewatch — the two commands: `make demo` and `make test`. Both set up .venv when needed.
PYTHON ?= python3
VENV ?= .venv
# CPU build of torch, installed before the project so nothing pulls a multi-GB CUDA build.
# Users with GPUs override it, e.g. `make venv TORCH_SPEC='torch==2.13.0' TORCH_ARGS='--index-url ...'`.
TORCH_SPEC ?= torch==2.13.0
TORCH_ARGS ?=
PIP := $(VENV)/bin/pip
BIN := $(VENV)/bin
STAMP := $(VENV)/.cuewatch-installed
# Peers: third-party servers the tests put behind the proxy, each in its own virtual environment
# so their pins never meet ours. LiteLLM's proxy is the OpenAI/Anthropic-compatible upstream.
PEERS ?= .venv-peers
LITELLM_SPEC ?= litellm[proxy]==1.108.7
LITELLM_STAMP := $(PEERS)/litellm/.installed
# The official Node SDKs, when node and npm are there (their test is skipped otherwise).
NODE_SDKS ?= openai@6.49.0 @anthropic-ai/sdk@1.14.0
NODE_STAMP := $(PEERS)/node/.installed

.PHONY: venv test demo check bench clean test-deps peers

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(PIP) install -q $(TORCH_ARGS) "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[dev]"
	@touch $(STAMP)

# Headless Chromium renders the HTML report in a test; redis-server (Debian's package) backs the
# scale-out tests, which start their own on a free loopback port; promtool (Debian's prometheus
# package) checks docs/ops/prometheus-rules.yaml. Installed when missing and possible.
test-deps:
	@command -v redis-server >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null 2>&1; } || \
		{ echo "error: redis-server is needed by the tests (apt-get install redis-server)"; exit 1; }
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
		echo "note: chromium not installed; the report screenshot test will be skipped"
	@command -v promtool >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null 2>&1; } || \
		echo "note: promtool not installed; the alerting rules are checked without it"

peers: $(LITELLM_STAMP) $(NODE_STAMP)

$(LITELLM_STAMP):
	@test -x $(PEERS)/litellm/bin/python || $(PYTHON) -m venv $(PEERS)/litellm
	$(PEERS)/litellm/bin/python -m pip install -q --upgrade pip
	$(PEERS)/litellm/bin/pip install -q "$(LITELLM_SPEC)"
	@touch $@

$(NODE_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		mkdir -p $(PEERS)/node && npm install --silent --no-audit --no-fund --prefix $(PEERS)/node $(NODE_SDKS) && touch $@; \
	else echo "note: npm not installed; the Node SDK test will be skipped"; fi

# The set-up steps are independent; run them side by side (mostly downloads), then the tests.
# The whole suite: the default run (every test but the slow ones, two processes), then the slow ones.
test:
	@$(MAKE) --no-print-directory -j3 venv test-deps peers
	$(BIN)/pytest
	$(BIN)/pytest -m slow

demo: venv
	$(BIN)/cuewatch demo

check: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: venv
	$(BIN)/python bench/proxy_overhead.py

clean:
	rm -rf $(VENV) $(PEERS) build dist *.egg-info cuewatch-demo cuewatch-logs
