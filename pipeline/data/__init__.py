"""The data layer: datasets as pixel arrays, MNIST and its IDX files, the seeded split."""
