"""The data layer: datasets as pixel arrays, the MNIST files and their IDX format, the seeded split."""
