# The two commands a newcomer types: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,hf]"
	touch $(STAMP)

venv: $(STAMP)

# The main job on the embedded default (offline; uses $$IE_DATA_DIR when set).
demo: $(STAMP)
	$(PY) -m launch.demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -n 2 $(ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
