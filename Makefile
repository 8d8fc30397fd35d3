# gameplane — everything starts here. Only Python 3.11+ is needed; `make` builds the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
B ?=
ARGS ?=

.PHONY: run test test-unit test-services test-system test-cluster lint bench cluster cluster-down clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

## make run [ARGS="--base-port 9000 --only gateway,players"]: start the whole platform locally
## (embedded PostgreSQL + NATS), print the URLs
run: $(STAMP)
	$(VENV)/bin/gameplane up $(ARGS)

## make test: every tier (lint, unit, services, system, cluster)
test: $(STAMP)
	$(VENV)/bin/ruff check services operator tests bench hack
	$(PY) -m pytest -q -p no:cacheprovider tests

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test-services: $(STAMP)
	$(PY) -m pytest -q tests/services

test-system: $(STAMP)
	$(PY) -m pytest -q tests/system

test-cluster: $(STAMP)
	$(PY) -m pytest -q tests/cluster

lint: $(STAMP)
	$(VENV)/bin/ruff check services operator tests bench hack

## make bench [B=name]: run the benchmarks (bench/<name>.py); each ends with a RESULT line
bench: $(STAMP)
	@set -e; if [ -n "$(B)" ]; then $(PY) bench/$(B).py; else \
	  for f in bench/*.py; do case $$f in */_*) continue;; esac; $(PY) $$f; done; fi

## make cluster: build (cached) and start the local Kubernetes cluster: a control plane, one real
## node (containerd, kubelet, kube-proxy, CoreDNS, metrics-server) with the images loaded, kwok nodes
cluster: $(STAMP)
	$(PY) hack/cluster.py up

## make cluster-down: stop it and put the host back as it was (fails if anything is left)
cluster-down: $(STAMP)
	$(PY) hack/cluster.py down

clean:
	rm -rf $(VENV) .gameplane .pytest_cache .ruff_cache
