# PNG in/out, preprocessing and colour maps.
mtmi_c_test(test_image tests/image/test_image.c)
