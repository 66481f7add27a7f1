# The scene generator: determinism (golden hash, threads) and labels that
# agree with the geometry; `mtmi synth`'s folders.
mtmi_c_test(test_synth tests/synth/test_synth.c)
target_link_libraries(test_synth PRIVATE OpenMP::OpenMP_C m)
mtmi_py_test(synth_cli tests/synth/test_synth_cli.py)
