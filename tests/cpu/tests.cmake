# CPU kernels against naive loops.
mtmi_c_test(test_kernels_movement tests/cpu/test_kernels_movement.c)
