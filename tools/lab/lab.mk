# Running the chapters in JupyterLab without touching the tracked notebooks.
# Included by the Makefile (`include tools/lab/lab.mk`), which defines setup, VENV and PY.
#
#   make lab         copy the chapters into lab/ (only those not there yet: your work is kept) and open
#                    JupyterLab there; running, saving and autosave change lab/ only, which git ignores
#   make lab-reset   replace lab/ by fresh copies of the chapters (your changes there are lost)
#   make kernel      register this project's Python as the Jupyter kernel "Python (Diffusion, Step by Step)",
#                    for another JupyterLab/Notebook or VS Code (written to your user's Jupyter folder)

LAB_DIR ?= lab

.PHONY: lab lab-copy lab-reset kernel

lab-copy:
	@mkdir -p $(LAB_DIR)
	@for nb in notebooks/*.ipynb; do \
	  [ -e "$(LAB_DIR)/$${nb##*/}" ] || { cp "$$nb" "$(LAB_DIR)/" && echo "copied $$nb to $(LAB_DIR)/"; }; \
	done

# The Makefile silences progress bars for the build and the tests; a learner wants them.
lab: setup lab-copy
	env -u DDPM_PROGRESS -u TQDM_DISABLE $(VENV)/bin/jupyter lab --ServerApp.root_dir=$(LAB_DIR)

lab-reset:
	rm -rf $(LAB_DIR)
	$(MAKE) -f $(firstword $(MAKEFILE_LIST)) lab-copy

kernel: setup
	$(PY) -m ipykernel install --user --name diffusion-step-by-step --display-name "Python (Diffusion, Step by Step)"
