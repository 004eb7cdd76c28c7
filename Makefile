# fnpgrade: two commands for a fresh clone.
#   make demo   create .venv, install, run the synthetic cross-validation demo
#   make test   create .venv if missing, run the test suite
# Override TORCH_SPEC for your own build, e.g. a CUDA wheel:
#   make demo TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
FNPGRADE_DATA ?= $(CURDIR)/.fnpgrade_data
export FNPGRADE_DATA
PY := $(VENV)/bin/python

.PHONY: demo test test-all install clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e ".[dev]"
	# face-alignment is optional (the "fan" backend); install it without its
	# opencv-python dependency so the headless OpenCV wheel stays the only cv2.
	$(PY) -m pip install --no-deps "face-alignment>=1.4"
	$(PY) -m fnpgrade.datasets.media --fetch
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m fnpgrade demo

test: install
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m ""

clean:
	rm -rf $(VENV) .fnpgrade_data
