"""``python -m automl`` (also what ``torchrun ... -m automl search`` runs)."""

from automl.cli import main

if __name__ == "__main__":
    main()
