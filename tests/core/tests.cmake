# The core's defences (issue 13): sizes, .npy headers, FIFOs, paths, output
# names, the temporary-file registry and signals.
mtmi_c_test(test_core tests/core/test_core.c)
