# ENTRA_SANITIZE=address,undefined -> compile and link flags. Errors abort
# (-fno-sanitize-recover=all), so a sanitizer finding fails the test.
if(ENTRA_SANITIZE)
  set(_san "-fsanitize=${ENTRA_SANITIZE}")
  add_compile_options(${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(${_san})
endif()
