# codesign — the whole flow in make targets. Every target creates/reuses .venv on demand.
SHELL := /bin/bash
PYTHON_SYS ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BITS ?= 4,8
BOARD ?= pynq_z2
DEVICE ?= xc7z020
JOBS ?= 2
IMPL ?= rtl

.PHONY: help setup demo deploy test ip synth sim bitstream bench clean lint armhf-check finetune

help: ## list the targets
	@echo "codesign make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-10s %s\n", $$1, $$2}'
	@echo "variables: BITS=$(BITS) DEVICE=$(DEVICE) JOBS=$(JOBS) IMPL=$(IMPL)"

$(STAMP): pyproject.toml scripts/setup_system.sh
	@bash scripts/setup_system.sh
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP) ## create .venv, install the pinned stack and the Debian tools (iverilog, Fashion-MNIST)

DEMO_OUT ?= runs/demo
demo: $(STAMP) ## run the main job: OHQ search of the trained Fashion-MNIST ResNet on the simulated board
	$(PY) -m codesign.ip --bits 4,8 --cores mac_tree,postproc,img2col,bram_bank,cycle_counter --no-csim --no-rtl --out build/ip
	$(PY) -m codesign.search --model resnet_s --board sim --bits 4,8 --ratio 0.5 \
	  --val-data fashion-mnist --out $(DEMO_OUT)

DEPLOY_N ?= 100
deploy: $(STAMP) ## deploy the demo run's chosen config on the sim board, bit-exact, timed: make deploy [DEMO_OUT=runs/demo DEPLOY_N=100]
	$(PY) -m codesign.deploy --run $(DEMO_OUT) --board sim --bits $(BITS) --data fashion-mnist --n $(DEPLOY_N) \
	  --out $(DEMO_OUT)/deploy

RUN ?= $(DEMO_OUT)
EPOCHS ?= 3
finetune: $(STAMP) ## QAT of a search run's config (default the demo run): make finetune RUN=runs/x EPOCHS=3
	$(PY) -m codesign.finetune --run $(RUN) --epochs $(EPOCHS) --data fashion-mnist --out $(RUN)/qat

test: $(STAMP) ## unit + g++ C-sim + cocotb RTL regression (Verilator, Icarus)
	$(PY) -m pytest -n $(JOBS) -q

SYNTH ?= 1
ip: $(STAMP) ## generate + C-simulate the HLS IP cores and RTL twins, synthesized figures beside the estimates: make ip BITS=4,8 [SYNTH=0]
	$(PY) -m codesign.ip --bits $(BITS) --device $(DEVICE) --out build/ip $(if $(filter 1,$(SYNTH)),--synth,)

synth: $(STAMP) ## open synthesis (Yosys) of the cores and the overlay, fit + timing: make synth BITS=4,8 DEVICE=xc7z020
	$(PY) -m codesign.synth --bits $(BITS) --device $(DEVICE) --out build/synth --jobs $(JOBS)

sim: $(STAMP) ## cocotb RTL regression only
	$(PY) -m pytest -n $(JOBS) -q -m rtl

bitstream: $(STAMP) ## Vivado block design -> build/overlay/*.bit + .hwh (needs Vivado): make bitstream [IMPL=rtl|hls]
	@if [ "$(IMPL)" != rtl ] && [ "$(IMPL)" != hls ]; then \
	  echo "make bitstream: IMPL must be rtl (the Verilog twins) or hls (the Vitis HLS exports), not '$(IMPL)'." >&2; exit 2; fi
	@if [ ! -f vivado_scripts/build_overlay.tcl ]; then \
	  echo "make bitstream: the overlay block design is not built yet (issue: OQA overlay); nothing to do." >&2; exit 1; fi
	@if ! command -v vivado >/dev/null; then \
	  echo "make bitstream: Vivado is not on PATH; source <Vivado>/settings64.sh and retry." >&2; exit 1; fi
	vivado -mode batch -source vivado_scripts/build_overlay.tcl -tclargs build/overlay $(BOARD) $(BITS) $(IMPL)

bench: $(STAMP) ## benchmarks under bench/ (figures go to docs/RESULTS.md)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

armhf-check: $(STAMP) ## the on-board stages in a Debian armhf root under qemu-user (root; slow; not in CI): make armhf-check [DISTILL_ITERS=20]
	DISTILL_ITERS=$(DISTILL_ITERS) PY=$(PY) bash scripts/armhf_check.sh

lint: $(STAMP) ## ruff + mypy (make test runs both too: tests/test_lint.py)
	$(PY) -m ruff check codesign tests bench sim
	$(PY) -m mypy

clean: ## remove build outputs (keeps .venv)
	rm -rf build runs .pytest_cache sim_build
