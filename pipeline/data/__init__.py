"""The data layer: datasets as arrays (digits, MNIST and its IDX relatives, MNIST-1D), the IDX
format and its verified downloads, the seeded split."""
