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
	# Apache Beam pins protobuf<7 and pyarrow<26, which break TF 2.21 and
	# sentencepiece; it goes to a side folder that a .pth file appends *after*
	# site-packages, so the pinned stack wins and Beam's DirectRunner still runs.
	$(PY) -m pip install -q --target $(VENV)/beam-lib "apache-beam==2.77.0"
	echo "$(abspath $(VENV))/beam-lib" > $$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_beam_side.pth
	touch $(STAMP)

venv: $(STAMP)

# The main job: instruction examples, then a tiny T5 trained on the embedded
# sample with per-dataset F1 at step 0 and at the end (ARGS=--no_train: look only).
demo: $(STAMP)
	$(PY) -m launch.demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -n 2 $(ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
