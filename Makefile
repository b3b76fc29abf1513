# `make demo` and `make test` work on a fresh clone: they create .venv/, install
# the pinned project, install bubblewrap (and headless chromium, for the HTML
# report and browser tests, and postgresql, for the service's database tests)
# when running as root, and run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SERVE_COURSE ?= serve-course

.PHONY: setup demo serve test test-service-slow test-all bench lint release validate clean docker-images docker-test docker-test-gpu vm-test

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@if [ "$$(id -u)" = 0 ] && ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		echo "installing bubblewrap (the learner sandbox)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1) || \
		echo "WARNING: bubblewrap could not be installed; submissions will run with weaker isolation"; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (headless, for the HTML report tests)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1) || \
		echo "WARNING: chromium could not be installed; the HTML report tests will be skipped"; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		echo "installing postgresql (a throwaway cluster per test session, for the dlgrade serve tests)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1) || \
		echo "WARNING: postgresql could not be installed; the database tests of dlgrade serve will be skipped"; \
	fi
	touch $(STAMP)

demo: setup
	$(BIN)/dlgrade batch examples/submissions --out demo-out

# The course service with the example course (docs/SERVICE.md): http://127.0.0.1:8000
serve: setup
	$(BIN)/dlgrade serve --course $(SERVE_COURSE) --demo

test: setup
	$(BIN)/python -m pytest -q -m "not slow and not docker and not docker_gpu"

# The service's slow tests (a SQLite lock held past its 30 s busy timeout, ...): .ci/run runs them.
test-service-slow: setup
	$(BIN)/python -m pytest -q -m "slow and not docker" tests/test_service_faults.py tests/test_service_postgres.py tests/test_service_web.py tests/test_service_load.py

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/bench_numpy.py
	$(BIN)/python bench/bench_tf.py

release: setup
	$(BIN)/dlgrade release

validate: setup
	$(BIN)/dlgrade validate

# Docker: build the images here from nothing (engine, base image, wheelhouse), then test them in
# real containers (tests/docker/, the `docker` marker). See docker/README.md.
docker-images:
	docker/build.sh cpu learner

docker-test: setup
	docker/test.sh

# Opt-in (not in .ci/run): the GPU image from nothing (a 3.3 GB wheelhouse, a 7.4 GB image; about 6 min
# here on 2 cores, plus a minute to download the wheels), then the tensorflow_intro examples graded in it without a GPU, and bench/gpu_check.sh's no-GPU
# path (tests/docker/test_gpu_image.py). On a GPU host: bench/gpu_check.sh.
docker-test-gpu: setup
	DLGRADE_DOCKER_MARKER=docker_gpu docker/test.sh tests/docker/test_gpu_image.py

# A real cgroup-v2 kernel (User-Mode Linux, Debian's user-mode-linux package) booting a Debian bookworm
# guest under systemd 252: the sandbox, cgroup and attack tests and a graded batch run there, one line
# per guarantee. The guest image is cached under .cache/vm/ (git-ignored). Needs root. See vm/README.md.
vm-test:
	vm/run.sh

# ruff (lint and format, settings in pyproject.toml) over the whole tree, mypy over autograder/.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf demo-out bench/out .pytest_cache serve-course
