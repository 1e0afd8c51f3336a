# kvmtui: the two commands of the README's quick start, and their parts.
#   make demo   set everything up, bring the lab up, open kvmtui on it
#   make test   set everything up, run the whole suite (ruff, mypy, pytest)
# Run as root on Debian 12. Every step is idempotent and quick when already done.

SHELL := /bin/bash
# root tools (ip, libvirtd, dnsmasq) live in sbin; some environments leave it off PATH
export PATH := $(PATH):/usr/local/sbin:/usr/sbin:/sbin
PY ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
LAB_PREFIX ?= kvmtui-
TEST_PREFIX ?= kvmtuit-
PYTEST_ARGS ?=

APT_PACKAGES := python3 python3-venv python3-dev gcc pkg-config libvirt-dev \
	libvirt-daemon-system libvirt-clients qemu-system-x86 dnsmasq-base busybox-static \
	linux-image-amd64 tcpdump tshark libpcap0.8 conntrack iproute2 iptables nftables \
	tmux kmod procps chromium chromium-driver openssh-server openssh-client

# the fast lane: no root, no lab, no namespaces; pure decoding, models, recordings and the UI
# on fake hosts (snapshots included). The whole suite stays `make test`.
FAST_TESTS := tests/capture/test_correlate.py tests/capture/test_decode.py \
	tests/capture/test_dhcp_unit.py tests/test_paths.py tests/test_replay.py \
	tests/test_seam_roundtrip.py tests/test_import_hygiene.py tests/test_connect_timeout.py \
	tests/ui/test_imports.py tests/ui/test_snapshots.py tests/ui/test_doctor_screen.py \
	tests/ui/test_lessons_screen.py tests/ui/test_switch_screen.py tests/ui/test_capture_fate.py \
	tests/ui/test_vlan_rows.py tests/test_nlshapes.py tests/test_shapes_join.py \
	tests/test_fixture_paths.py tests/ui/test_fixture_explorer.py tests/doctor/test_shapes_doctor.py \
	tests/ui/test_host_picker.py tests/test_hosts.py tests/ui/test_throttle.py

.PHONY: demo test test-fast deps venv lint lab-up lab-down lab-status bench screenshots clean

demo: deps venv
	$(BIN)/kvmtui lab --prefix $(LAB_PREFIX) up
	$(BIN)/kvmtui lab --prefix $(LAB_PREFIX) exec -- $(CURDIR)/$(BIN)/kvmtui
	@echo "The lab $(LAB_PREFIX) is still up (next make demo opens in a second)."
	@echo "Remove it with: $(CURDIR)/$(BIN)/kvmtui lab --prefix $(LAB_PREFIX) down   (or: make lab-down)"

test: deps venv lint
	KVMTUI_LAB_PREFIX=$(TEST_PREFIX) $(BIN)/pytest $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/pytest -q -m 'not lab' $(FAST_TESTS) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make: run as root (the lab needs namespaces and libvirtd)"; exit 1; fi
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.stamp

$(VENV)/.stamp: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

lab-up: deps venv
	$(BIN)/kvmtui lab --prefix $(LAB_PREFIX) up
lab-down: venv
	$(BIN)/kvmtui lab --prefix $(LAB_PREFIX) down
lab-status: venv
	$(BIN)/kvmtui lab --prefix $(LAB_PREFIX) status

bench: deps venv
	$(BIN)/python bench/inventory.py
	$(BIN)/python bench/capture.py
	$(BIN)/python bench/ui.py
	$(BIN)/python bench/doctor.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
