# The Triton Inference Server backend (issue 19, docs/TRITON.md): included
# by the top-level CMakeLists.txt after the library layers.
#
#   mtmi_triton_core   json.c, config.c, engine.c: the config, the
#                      placement per instance, the pipelines and the batch
#                      run; no Triton type (the unit test links it)
#   triton_mtmi        backend.c: libtriton_mtmi.so, the MODULE the server
#                      dlopens from <backend-directory>/mtmi/
#
# The backend uses only include/mtmi.h.  It links the library here through
# MTMI_TRITON_LIBMTMI: today the static layers (compiled position
# independent for it), once the shared libmtmi.so of issue 17 is built the
# one line below becomes `set(MTMI_TRITON_LIBMTMI mtmi_shared)`.
set(MTMI_TRITON_LIBMTMI mtmi)

# Objects linked into a shared module must be position independent.
foreach(layer ${MTMI_LAYERS})
  set_target_properties(${layer} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endforeach()

add_library(mtmi_triton_core STATIC ${CMAKE_SOURCE_DIR}/src/triton/json.c ${CMAKE_SOURCE_DIR}/src/triton/config.c
            ${CMAKE_SOURCE_DIR}/src/triton/engine.c)
target_include_directories(mtmi_triton_core PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(mtmi_triton_core PUBLIC ${MTMI_TRITON_LIBMTMI} pthread)
set_target_properties(mtmi_triton_core PROPERTIES POSITION_INDEPENDENT_CODE ON)

# The module is for the server, which loads no sanitizer runtime: not in
# the ASan, TSan or fuzzing builds (the unit test covers the core there).
if(MTMI_SANITIZE OR MTMI_FUZZ OR CMAKE_C_FLAGS MATCHES "sanitize")
  return()
endif()
add_library(triton_mtmi MODULE ${CMAKE_SOURCE_DIR}/src/triton/backend.c)
target_link_libraries(triton_mtmi PRIVATE mtmi_triton_core)
# Triton finds <backend-directory>/mtmi/libtriton_mtmi.so; the build tree
# has that layout too (build/triton/backends).  The TRITON* functions the
# backend calls come from the server process at load time.  Installed, the
# module finds the prefix's lib/ ($ORIGIN/../../..: where libmtmi.so goes)
# and the folders of what it links (CUDA's).
set_target_properties(triton_mtmi PROPERTIES PREFIX lib OUTPUT_NAME triton_mtmi C_VISIBILITY_PRESET hidden
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/triton/backends/mtmi
                      INSTALL_RPATH "\$ORIGIN/../../.." INSTALL_RPATH_USE_LINK_PATH ON LINK_DEPENDS ${CMAKE_SOURCE_DIR}/src/triton/libtriton_mtmi.map)
target_link_options(triton_mtmi PRIVATE -Wl,--version-script=${CMAKE_SOURCE_DIR}/src/triton/libtriton_mtmi.map)
install(TARGETS triton_mtmi LIBRARY DESTINATION lib/triton/backends/mtmi COMPONENT triton)
