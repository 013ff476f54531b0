# Warning and hardening flags. Each one is probed, so the same list works
# with gcc 12 and clang 14 (clang refuses -ftrivial-auto-var-init=zero
# without an extra flag, so the probe drops it there).
include(CheckCCompilerFlag)

set(ENTRA_WARNINGS
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wformat=2 -Wvla -Wcast-qual -Wwrite-strings -Wimplicit-fallthrough
  -Wnull-dereference -Wno-unused-parameter)
set(ENTRA_HARDENING
  -fstack-protector-strong -fstack-clash-protection -fcf-protection
  -ftrivial-auto-var-init=zero)

foreach(flag IN LISTS ENTRA_WARNINGS ENTRA_HARDENING)
  string(MAKE_C_IDENTIFIER "HAVE_CFLAG${flag}" var)
  check_c_compiler_flag("${flag}" ${var})
  if(${var})
    add_compile_options("${flag}")
  endif()
endforeach()

if(ENTRA_WERROR)
  add_compile_options(-Werror)
endif()

# _FORTIFY_SOURCE needs optimisation and fights with ASan; only without it.
if(NOT ENTRA_SANITIZE)
  check_c_compiler_flag(-D_FORTIFY_SOURCE=3 HAVE_FORTIFY3)
  add_compile_options(-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3)
endif()

set(CMAKE_POSITION_INDEPENDENT_CODE ON)
add_link_options(-Wl,-z,relro,-z,now)
include(CheckPIESupported)
check_pie_supported()
