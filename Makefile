# gr-gdm developer entry points. Every target bootstraps what it needs and is idempotent.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gdm-bootstrap-v1
# Development mode: .dev/gnuradio/gdm links to python/gdm, and gnuradio's extend_path picks it up.
export PYTHONPATH := $(CURDIR)/.dev$(if $(PYTHONPATH),:$(PYTHONPATH))
export GRC_BLOCKS_PATH := $(CURDIR)/grc
# Headless Qt for the GUI example and matplotlib.
export QT_QPA_PLATFORM := offscreen
export MPLBACKEND := Agg

.PHONY: all bootstrap dev demo test test-fast eval clean install

all: test

/usr/bin/gnuradio-config-info:
	@echo "[gr-gdm] installing GNU Radio from Debian (needs root)"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
		gnuradio gnuradio-dev python3-zmq python3-venv cmake

# Debian's GNU Radio imports only from /usr/bin/python3, hence a venv with system site packages.
$(STAMP): /usr/bin/gnuradio-config-info requirements.txt
	test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

# Development mode: the source tree imports as gnuradio.gdm and `gr-gdm` runs, without installing.
dev: $(STAMP)
	mkdir -p .dev/gnuradio
	ln -sfn ../../python/gdm .dev/gnuradio/gdm
	printf '#!/bin/sh\nPYTHONPATH="$(CURDIR)/.dev$${PYTHONPATH:+:$$PYTHONPATH}" GRC_BLOCKS_PATH="$(CURDIR)/grc$${GRC_BLOCKS_PATH:+:$$GRC_BLOCKS_PATH}" exec "$(CURDIR)/$(PY)" "$(CURDIR)/apps/gr-gdm" "$$@"\n' > $(VENV)/bin/gr-gdm
	chmod 755 $(VENV)/bin/gr-gdm

bootstrap: dev

demo: dev
	$(VENV)/bin/gr-gdm demo

test: dev
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

test-fast: dev
	$(PY) -m pytest -q -m "not slow" tests $(PYTEST_ARGS)

install: /usr/bin/gnuradio-config-info
	cmake -B build && cmake --build build && cmake --install build

clean:
	rm -rf build .pytest_cache
