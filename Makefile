# The two commands a newcomer needs: `make demo` (the whole system, locally) and `make test`.
# Both set up what is missing first: a Python 3.11 venv with the package, the Kafka jars from
# Maven Central, and the Debian packages the benches and browser tests use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS := dev,sentiment,bench,analytics,browser
STAMP  := $(VENV)/.installed

.PHONY: setup demo test unit integration lint bench down clean jars

setup: $(STAMP) broker/lib/.fetched

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	@touch $@

broker/lib/.fetched: broker/pom.xml
	mvn -q -B -f broker/pom.xml dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	@touch $@

jars: broker/lib/.fetched

demo: setup
	$(BIN)/livecommerce demo

test: setup lint
	$(BIN)/python -m pytest -q

unit: setup
	$(BIN)/python -m pytest -q tests/unit

integration: setup
	$(BIN)/python -m pytest -q tests/integration

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy schemas livecommerce/settings.py streams/dead_letters.py

bench: setup
	$(BIN)/livecommerce bench pipeline --json
	$(BIN)/livecommerce bench flash-sale --json
	$(BIN)/livecommerce bench sentiment --json

down:
	-$(BIN)/livecommerce down

clean: down
	rm -rf .lc build *.egg-info
