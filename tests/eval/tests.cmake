# Metrics against ground truth: hand-built cases with exact values, crops
# and resampling, random frames against a recount; `mtmi eval` end to end
# on a hand-made folder and model; the trained model's file format.
mtmi_c_test(test_eval tests/eval/test_eval.c)
target_link_libraries(test_eval PRIVATE mtmi_eval m)
mtmi_py_test(eval_cli tests/eval/test_eval_cli.py)
mtmi_py_test(trained_format tests/eval/test_trained_format.py)
# The trained built-in model (models/mtmi_trained.onnx, made on a GPU by
# scripts/train_mtmi.py): registered once the file is in the tree.
if(EXISTS ${CMAKE_SOURCE_DIR}/models/mtmi_trained.onnx)
  mtmi_py_test(eval_trained tests/eval/test_trained.py)
else()
  message(STATUS "models/mtmi_trained.onnx not present: test eval_trained not registered (scripts/train_mtmi.py makes it)")
endif()
