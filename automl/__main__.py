"""``python -m automl`` (also what ``torchrun -m automl search`` runs)."""

from automl.cli import main

main()
