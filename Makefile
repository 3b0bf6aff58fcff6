.PHONY: setup demo test unit lab bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/python examples/demo.py

# pytest exits 5 when it collects nothing: that fails the target like any other non-zero code.
test: setup
	.venv/bin/pytest -q

unit: setup
	.venv/bin/pytest -q tests/unit

lab: setup
	.venv/bin/pytest -q tests/lab

bench: setup
	.venv/bin/python bench/dataplane.py

clean:
	rm -rf .venv .pytest_cache .hypothesis src/*.egg-info
