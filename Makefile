# The two set-up commands of the README:
#   make quickstart   - install everything (venv, pinned wheels, mosquitto) and run `edgekit quickstart`
#   make test         - install everything (plus test tools), lint and type-check, and run the whole test suite
# Both are idempotent: the venv is rebuilt only when pyproject.toml or setup.py change.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages: the broker for quickstart and the tests; disk-image and lint tools for the firmware tests.
RUN_PACKAGES := mosquitto
TEST_PACKAGES := mosquitto mosquitto-clients mtools dosfstools e2fsprogs fdisk shellcheck xz-utils openssl \
	openssh-client openssh-server bmap-tools
PYTEST_ARGS ?=

.PHONY: quickstart test lint venv system-packages test-system-packages clean

quickstart: venv system-packages
	$(BIN)/edgekit quickstart

test: venv test-system-packages lint
	@# sshd (for the provisioning test over a real SSH connection) needs its privilege-separation directory,
	@# which only systemd would create.
	@install -d -m 0755 /run/sshd 2>/dev/null || true
	@# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# ruff (lint) and mypy (types) over edgekit/ and converters/, as part of the test command.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

venv: $(VENV)/.installed

# torch is pinned to 2.13.0 in pyproject.toml, so pip takes the local CPU wheel and never a CUDA build.
$(VENV)/.installed: pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip check
	touch $@

system-packages:
	@$(MAKE) --no-print-directory apt PACKAGES="$(RUN_PACKAGES)"

test-system-packages:
	@$(MAKE) --no-print-directory apt PACKAGES="$(TEST_PACKAGES)"

apt:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info
