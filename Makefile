# Two entry points for a fresh machine:
#   make demo   - run the agent against the built-in local environment (no AWS account)
#   make test   - install what the tests need and run them
#   make cli-docs - the man page and bash completion, from the argument parser (build/cli/)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: demo test clean cli-docs

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,probe,test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/s3-route-agent demo

test: $(VENV)/.installed
	@# tests/test_systemd_units.py runs systemd-analyze verify (Debian/Ubuntu package: systemd);
	@# as root it is installed when missing, otherwise those tests skip and say why.
	@command -v systemd-analyze >/dev/null || [ "$$(id -u)" != 0 ] || { apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd; }
	$(PY) -m pytest -q

# The manual page and the bash completion script, generated from the argument parser.
cli-docs: $(VENV)/.installed
	mkdir -p build/cli
	$(VENV)/bin/s3-route-agent man > build/cli/s3-route-agent.1
	$(VENV)/bin/s3-route-agent completion bash > build/cli/s3-route-agent.bash

clean:
	rm -rf $(VENV) build *.egg-info
