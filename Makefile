# gameplane — everything starts here. Only Python 3.11+ is needed; `make` builds the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
B ?=
ARGS ?=

.PHONY: run test test-unit test-services test-security test-system test-browser test-cluster test-images lint bench cluster cluster-down \
	images host-deps clean

# Debian packages the tiers need: the images and cluster tiers' Docker engine, containerd, runc, CNI,
# debootstrap ...; the unit tier's promtool (package prometheus; its daemon is not started, see below); the
# browser tier's Chromium (Playwright drives it; no browser is downloaded).
HOST_PACKAGES := docker.io containerd runc containernetworking-plugins debootstrap iptables ipset conntrack socat tini gcc \
	prometheus chromium

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

## make host-deps: install the Debian packages the tiers need, when any is missing (root; no daemon
## is started by the installation). Elsewhere it only says what is missing: those tiers then skip.
host-deps:
	@missing=$$(for p in $(HOST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	missing=$$(echo $$missing); \
	if ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ]; then \
	  echo "host-deps: missing $$missing (needs root on Debian/Ubuntu: sudo make host-deps)" >&2; exit 0; fi; \
	echo "host-deps: installing $$missing"; \
	created=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && created=1; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
	if [ -n "$$created" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc

## make test: every tier (lint, unit, services, security, system, browser, cluster, images). What the cluster and
## images tiers build from source (Go tools, images; cached, so seconds when warm) is built in the
## background from the start: cold, it overlaps the first three tiers, and skaffold (built last)
## the cluster tier's first tests; each tier waits for just what it needs (the builds' locks).
## --durations: the slowest tests of each group are printed, to keep the run inside its time budget.
test: $(STAMP) host-deps
	$(VENV)/bin/ruff check services operator tests bench hack
	@mkdir -p .gameplane; \
	$(PY) hack/cluster.py build > .gameplane/prebuild.log 2>&1 & pre=$$!; \
	rc=0; $(PY) -m pytest -q -p no:cacheprovider --durations=25 tests/unit tests/services tests/system tests/security tests/browser || rc=$$?; \
	rc2=0; $(PY) -m pytest -q -p no:cacheprovider --durations=25 tests/cluster tests/images || rc2=$$?; \
	wait $$pre || echo "background build failed (.gameplane/prebuild.log); the tiers rebuilt what they needed" >&2; \
	if [ $$rc -eq 0 ]; then rc=$$rc2; fi; exit $$rc

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test-services: $(STAMP)
	$(PY) -m pytest -q tests/services

test-security: $(STAMP)
	$(PY) -m pytest -q tests/security

test-system: $(STAMP)
	$(PY) -m pytest -q tests/system

test-browser: $(STAMP) host-deps
	$(PY) -m pytest -q tests/browser

test-cluster: $(STAMP)
	$(PY) -m pytest -q tests/cluster

test-images: $(STAMP) host-deps
	$(PY) -m pytest -q tests/images

lint: $(STAMP)
	$(VENV)/bin/ruff check services operator tests bench hack

## make bench [B=name]: run the benchmarks (bench/<name>.py); each ends with a RESULT line
bench: $(STAMP)
	@set -e; if [ -n "$(B)" ]; then $(PY) bench/$(B).py; else \
	  for f in bench/*.py; do case $$f in */_*) continue;; esac; $(PY) $$f; done; fi

## make images: build the service and operator images on the local Debian base (cached) and print
## their sizes (root: Debian's Docker engine, started and stopped by hack/images.py)
images: $(STAMP)
	$(PY) hack/images.py build --only service,operator --sizes

## make cluster: build (cached) and start the local Kubernetes cluster: a control plane, one real
## node (containerd, kubelet, kube-proxy, CoreDNS, metrics-server) with the images loaded, kwok nodes
cluster: $(STAMP) host-deps
	$(PY) hack/cluster.py up

## make cluster-down: stop it and put the host back as it was (fails if anything is left)
cluster-down: $(STAMP)
	$(PY) hack/cluster.py down

clean:
	rm -rf $(VENV) .gameplane .pytest_cache .ruff_cache
