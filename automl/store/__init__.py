"""The SQL run store: runs, epochs, distributions, architectures, checkpoints, indexes."""

from automl.store.repository import Store, file_sha256, genotype_hash, open_store

__all__ = ["Store", "open_store", "file_sha256", "genotype_hash"]
