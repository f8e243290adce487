# Two commands a newcomer needs: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench soak clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m firmware_sim.demo

lint: $(STAMP)
	$(BIN)/ruff check voter firmware_sim hil tests bench

typecheck: $(STAMP)
	$(BIN)/mypy voter hil firmware_sim

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(QUICK),--quick,)

# The reliability figures at their real sizes (not in `make test`; ~1-2 h on one core).
# SCALE=0.01 for a quick look; the report is runs/soak/report.html.
soak: $(STAMP)
	nice $(BIN)/hil soak campaigns/soak/full.toml --out runs/soak $(if $(SCALE),--scale $(SCALE),)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
