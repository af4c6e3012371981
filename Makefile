# Two entry points for a fresh machine:
#   make demo   - run the agent against the built-in local environment (no AWS account)
#   make test   - install what the tests need and run them
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: demo test clean

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

clean:
	rm -rf $(VENV) build *.egg-info
