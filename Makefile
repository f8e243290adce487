# Two commands a newcomer needs: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench soak clean mypyc test-mypyc

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

# Optional compiled core (setup.py, VOTER_MYPYC=1): built in place in a copy of the tree, so
# the pure tree, its tests and their monkeypatching stay untouched. Not part of `make test`
# (the build takes ~1 CPU-minute, several minutes of wall time on a loaded machine).
MYPYC_TREE := build/mypyc
# Not test_frame.py / test_seal.py: they hand the codec wrongly typed fields on purpose, which a
# compiled class refuses earlier, with TypeError (docs/design.md, "The compiled build").
MYPYC_TESTS ?= tests/test_sim_golden.py tests/test_sim_lanes.py tests/test_secded.py \
	tests/test_vote.py tests/test_slots.py tests/test_splitter.py tests/test_cobs.py \
	tests/test_clock.py tests/test_hotpaths.py tests/test_generals.py tests/test_pbft.py \
	tests/test_paxos.py tests/test_validity.py \
	tests/test_sensors.py::test_sim_sensor_noise_is_random_gauss_exactly

mypyc: $(STAMP)
	rm -rf $(MYPYC_TREE) && mkdir -p $(MYPYC_TREE)
	cp -r setup.py pyproject.toml README.md voter hil firmware_sim tests bench campaigns examples \
	  $(MYPYC_TREE)/
	cd $(MYPYC_TREE) && VOTER_MYPYC=1 $(CURDIR)/$(BIN)/python setup.py -q build_ext --inplace

test-mypyc: mypyc
	cd $(MYPYC_TREE) && PYTHONPATH=. $(CURDIR)/$(BIN)/python -c \
	  "import voter.core.board as b, sys; sys.exit(0 if b.__file__.endswith('.so') else 'not compiled')"
	cd $(MYPYC_TREE) && PYTHONPATH=. $(CURDIR)/$(BIN)/python -m pytest -q -p no:cacheprovider $(MYPYC_TESTS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
