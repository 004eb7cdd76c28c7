"""Beyond one machine: on-disk clip stores, Dask, training on several processes (the ``scale`` extra)."""
