# The Triton Inference Server backend (issue 19, docs/TRITON.md): included
# by the top-level CMakeLists.txt after the library layers.
#
#   mtmi_triton_core   json.c, config.c, engine.c: the config, the
#                      placement per instance, the pipelines and the batch
#                      run; no Triton type (the unit test links it)
#   triton_mtmi        backend.c: libtriton_mtmi.so, the MODULE the server
#                      dlopens from <backend-directory>/mtmi/
#
# The backend uses only include/mtmi.h and links the shared libmtmi.so
# (issue 17), like any program of a user's: MTMI_TRITON_LIBMTMI names the
# library target.  The sanitizer and fuzzing builds build no module (below)
# and link the unit test to the static layers, as every other test there.
set(MTMI_TRITON_SANITIZED OFF)
if(MTMI_SANITIZE OR MTMI_FUZZ OR CMAKE_C_FLAGS MATCHES "sanitize")
  set(MTMI_TRITON_SANITIZED ON)
endif()
if(MTMI_TRITON_SANITIZED)
  set(MTMI_TRITON_LIBMTMI mtmi)
else()
  set(MTMI_TRITON_LIBMTMI mtmi_shared)
endif()

add_library(mtmi_triton_core STATIC ${CMAKE_SOURCE_DIR}/src/triton/json.c ${CMAKE_SOURCE_DIR}/src/triton/config.c
            ${CMAKE_SOURCE_DIR}/src/triton/engine.c)
target_include_directories(mtmi_triton_core PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(mtmi_triton_core PUBLIC ${MTMI_TRITON_LIBMTMI} pthread)
set_target_properties(mtmi_triton_core PROPERTIES POSITION_INDEPENDENT_CODE ON)

# The module is for the server, which loads no sanitizer runtime: not in
# the ASan, TSan or fuzzing builds (the unit test covers the core there).
if(MTMI_TRITON_SANITIZED)
  return()
endif()
add_library(triton_mtmi MODULE ${CMAKE_SOURCE_DIR}/src/triton/backend.c)
target_link_libraries(triton_mtmi PRIVATE mtmi_triton_core)
# Triton finds <backend-directory>/mtmi/libtriton_mtmi.so; the build tree
# has that layout too (build/triton/backends), and an install puts it in
# <prefix>/lib/triton/backends/mtmi.  The TRITON* functions the backend
# calls come from the server process at load time.  Installed, the module
# finds libmtmi.so in the prefix's library folder (relative to $ORIGIN, so
# the tree can move) and what it links outside the system's folders (CUDA).
set(MTMI_TRITON_DIR lib/triton/backends/mtmi)
file(RELATIVE_PATH _mtmi_triton_to_lib /prefix/${MTMI_TRITON_DIR} /prefix/${CMAKE_INSTALL_LIBDIR})
set_target_properties(triton_mtmi PROPERTIES PREFIX lib OUTPUT_NAME triton_mtmi C_VISIBILITY_PRESET hidden
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/triton/backends/mtmi
                      INSTALL_RPATH "\$ORIGIN/${_mtmi_triton_to_lib}" INSTALL_RPATH_USE_LINK_PATH ON
                      LINK_DEPENDS ${CMAKE_SOURCE_DIR}/src/triton/libtriton_mtmi.map)
target_link_options(triton_mtmi PRIVATE -Wl,--version-script=${CMAKE_SOURCE_DIR}/src/triton/libtriton_mtmi.map)
install(TARGETS triton_mtmi LIBRARY DESTINATION ${MTMI_TRITON_DIR} COMPONENT triton)

# The C gRPC load generator (grpc_load.c; scripts/triton_perf.py
# --c-client): built where gRPC's C core is found (Debian: libgrpc-dev);
# the Python client stays the default without it.
find_path(MTMI_GRPC_INCLUDE grpc/grpc.h)
find_library(MTMI_GRPC_LIB grpc)
find_library(MTMI_GPR_LIB gpr)
if(MTMI_GRPC_INCLUDE AND MTMI_GRPC_LIB AND MTMI_GPR_LIB)
  add_executable(mtmi_triton_grpc_load ${CMAKE_SOURCE_DIR}/src/triton/grpc_load.c)
  target_include_directories(mtmi_triton_grpc_load PRIVATE ${MTMI_GRPC_INCLUDE})
  target_link_libraries(mtmi_triton_grpc_load PRIVATE ${MTMI_GRPC_LIB} ${MTMI_GPR_LIB} pthread)
  # libgrpc's own dependencies (abseil, re2, c-ares) beside it: found at
  # link time there too when they are not in the system's folders (the GPU
  # machine's unpacked .deps-triton/grpc-c.tar.xz)
  get_filename_component(_mtmi_grpc_libdir ${MTMI_GRPC_LIB} DIRECTORY)
  target_link_options(mtmi_triton_grpc_load PRIVATE "LINKER:-rpath-link,${_mtmi_grpc_libdir}")
else()
  message(STATUS "gRPC C core (grpc/grpc.h, libgrpc, libgpr) not found: mtmi_triton_grpc_load not built")
endif()
