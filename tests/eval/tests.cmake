# Metrics against ground truth: hand-built cases with exact values, crops
# and resampling, random frames against a recount; `mtmi eval` end to end
# on a hand-made folder and model; the trained model's file format.
mtmi_c_test(test_eval tests/eval/test_eval.c)
target_link_libraries(test_eval PRIVATE mtmi_eval m)
mtmi_py_test(eval_cli tests/eval/test_eval_cli.py)
mtmi_py_test(trained_format tests/eval/test_trained_format.py)
mtmi_py_test(class_bias tests/eval/test_class_bias.py)
# The trained built-in model (models/mtmi_trained.onnx, made on a GPU by
# scripts/train_mtmi.py): registered once the file is in the tree.
if(EXISTS ${CMAKE_SOURCE_DIR}/models/mtmi_trained.onnx)
  mtmi_py_test(eval_trained tests/eval/test_trained.py)
else()
  message(STATUS "models/mtmi_trained.onnx not present: test eval_trained not registered (scripts/train_mtmi.py makes it)")
endif()
# The training script across calls (resume, compact checkpoint, start-over,
# a time schedule over calls) on the CPU: needs PyTorch and onnx in the
# Python that ctest runs, skipped (exit 77) without them.
mtmi_py_test(train_resume tests/eval/test_train_resume.py)
set_tests_properties(train_resume PROPERTIES SKIP_RETURN_CODE 77)
