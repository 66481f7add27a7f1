# PNG in/out, preprocessing and colour maps.
mtmi_c_test(test_image tests/image/test_image.c)
# mt_image_fit and mt_image_to_chw against an independent NumPy
# implementation of the same definitions (odd sizes, up and down, crops).
add_executable(image_tool ${CMAKE_SOURCE_DIR}/tests/image/image_tool.c)
target_include_directories(image_tool PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(image_tool PRIVATE mtmi)
mtmi_py_test(image_fit tests/image/test_fit.py $<TARGET_FILE:image_tool>)
