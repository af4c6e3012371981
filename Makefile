# Two entry points for a fresh machine:
#   make demo   - run the agent against the built-in local environment (no AWS account)
#   make test   - install what the tests need and run them
#   make cli-docs - the man page and bash completion, from the argument parser (build/cli/)
# Native packages (dist/): make deb, make rpm.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The runtime wheels for Python 3.9 (the oldest the agent supports), downloaded once: the
# packages bundle them, and the packaging and Python 3.9 tests install from them offline.
WHEELHOUSE := build/wheelhouse

.PHONY: demo test clean cli-docs deb rpm wheelhouse rpmbuild

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,probe,test]'
	touch $@

$(WHEELHOUSE)/.complete: pyproject.toml $(VENV)/.installed
	$(PY) packaging/build_packages.py wheelhouse $(WHEELHOUSE)
	touch $@

wheelhouse: $(WHEELHOUSE)/.complete

# rpmbuild comes from Debian's rpm package; as root it is installed when missing.
rpmbuild:
	@command -v rpmbuild >/dev/null || [ "$$(id -u)" != 0 ] || { apt-get update -qq && apt-get install -y -qq --no-install-recommends rpm; }

deb: $(WHEELHOUSE)/.complete
	$(PY) packaging/build_packages.py deb --wheelhouse $(WHEELHOUSE) --out dist

rpm: $(WHEELHOUSE)/.complete rpmbuild
	$(PY) packaging/build_packages.py rpm --wheelhouse $(WHEELHOUSE) --out dist

demo: $(VENV)/.installed
	$(VENV)/bin/s3-route-agent demo

test: $(VENV)/.installed $(WHEELHOUSE)/.complete rpmbuild
	@# tests/assets/test_systemd_units.py runs systemd-analyze verify and test_systemd_boot.py
	@# boots systemd in namespaces (Debian/Ubuntu package: systemd); test_packages.py builds the
	@# .rpm with rpmbuild (package: rpm). As root they are installed when missing, otherwise
	@# those tests skip and say why.
	@command -v systemd-analyze >/dev/null || [ "$$(id -u)" != 0 ] || { apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd; }
	$(PY) -m pytest -q

# The manual page and the bash completion script, generated from the argument parser.
cli-docs: $(VENV)/.installed
	mkdir -p build/cli
	$(VENV)/bin/s3-route-agent man > build/cli/s3-route-agent.1
	$(VENV)/bin/s3-route-agent completion bash > build/cli/s3-route-agent.bash

clean:
	rm -rf $(VENV) build dist *.egg-info
