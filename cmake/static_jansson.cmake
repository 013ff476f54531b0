# entra_link_jansson_static(TARGET): link TARGET against libjansson.a
# instead of libjansson.so, where the archive exists (JANSSON_STATIC_LIBRARY,
# found in the top CMakeLists.txt).
#
# Why: credctl is exec'd once per token. Linked against libjansson.so with
# -z now, every exec maps the library and binds all its symbols before main,
# although `credctl token` (lib/client.c's byte path) never calls jansson:
# ~30 k of credctl's ~240 k instructions per token (issue 16, BENCHMARKS.md).
# The archive puts only the objects credctl uses into its own PIE, which
# keeps full RELRO and -z now; --as-needed then drops the shared library
# that lib/'s entra target still names (pam_entra and credd keep it: they
# are loaded or started once).
#
# Never for a shared object (pam_entra.so): a library copy inside a module
# loaded into sshd would clash with the host's libjansson.
function(entra_link_jansson_static target)
  if(NOT JANSSON_STATIC_LIBRARY)
    message(STATUS "${target}: libjansson.a not found, linking libjansson.so")
    return()
  endif()
  target_link_libraries(${target} PRIVATE ${JANSSON_STATIC_LIBRARY})
  target_link_options(${target} PRIVATE LINKER:--as-needed)
endfunction()
