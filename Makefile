# The README's commands. Each bootstraps .venv, the pinned packages and Delta's jars on first use.
SHELL := /bin/bash
PY := .venv/bin/python
export SPARK_LOCAL_IP ?= 127.0.0.1
# The driver JVMs of the demo and the suite (sessions, spark-submit, the Connect server) run short jobs on small
# data: the C1 compiler and the serial collector halve the CPU a spark-submit of a bundled job takes here.
export SPARK_FLOWS_JAVA_OPTIONS ?= -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
# Set only when the bootstrap had to fetch Delta's jars with mvn (read at run time, after bootstrap).
JARS := SPARK_FLOWS_JARS="$${SPARK_FLOWS_JARS:-$$(cat .cache/delta-jars.txt 2>/dev/null)}"
RUN := $(JARS) $(PY)

.PHONY: demo test check test-fast test-connect test-versions lint bench cluster-test bootstrap dist clean

demo: bootstrap            ## run every bundled job on generated sample data, local mode
	$(RUN) scripts/demo.py

test: bootstrap lint       ## static checks, the suite on classic Spark and on Spark Connect, the wheel on Python 3.10 and 3.13
	$(JARS) bash scripts/test.sh

check: bootstrap lint      ## the fast loop: lint, then the in-process tests of the modules the working tree changed
	$(JARS) bash scripts/check.sh

test-versions: bootstrap   ## only the wheel on Python 3.10 + pyspark 4.2 and Python 3.13 + pyspark 4.1
	bash scripts/test_versions.sh

test-connect: bootstrap    ## only the Spark Connect run (a local Connect server is started and stopped)
	SPARK_FLOWS_TEST_BACKEND=connect $(RUN) -m pytest tests --ignore=tests/jobs

test-fast: bootstrap       ## the suite without the standalone-cluster test
	$(RUN) -m pytest -m "not cluster"

cluster-test: bootstrap    ## only the standalone-cluster test
	$(RUN) -m pytest -m cluster

lint: bootstrap
	.venv/bin/ruff check spark_flows jobs tests benchmarks scripts examples conftest.py
	.venv/bin/mypy

graphs: bootstrap          ## render each bundled job's flow into docs/flow.md
	$(RUN) scripts/render_graphs.py

bench: bootstrap           ## benchmarks: figures and ratios side by side
	$(RUN) benchmarks/run.py

dist: bootstrap            ## wheel and --py-files zip under dist/
	$(PY) -m pip wheel --no-deps -q -w dist .
	$(PY) -c "from spark_flows.core.submit import package_zip; print(package_zip('dist/spark_flows.zip'))"

bootstrap:
	@bash scripts/bootstrap.sh

clean:
	rm -rf data dist build .cache/spark-warehouse spark-warehouse .pytest_cache
