# The project's one version string. It is written in one place, the top
# entry of debian/changelog ("entra-credd (0.1.0-1) ..."): its upstream
# part (no epoch, no Debian revision) becomes ENTRA_VERSION, which
# include/entra/version.h (generated into the build tree) gives to credd
# (--version, its start line, stats, the User-Agent) and credctl
# (--version). -DENTRA_VERSION=... overrides it (a build from a tree
# without debian/).
set(_changelog ${PROJECT_SOURCE_DIR}/debian/changelog)
if(NOT ENTRA_VERSION)
  if(NOT EXISTS ${_changelog})
    message(FATAL_ERROR "no ${_changelog}: pass -DENTRA_VERSION=X.Y.Z")
  endif()
  file(STRINGS ${_changelog} _top LIMIT_COUNT 1)
  if(NOT _top MATCHES "^[a-z0-9][a-z0-9.+-]* \\(([^)]+)\\)")
    message(FATAL_ERROR "${_changelog}: cannot read the version from '${_top}'")
  endif()
  set(_v ${CMAKE_MATCH_1})
  string(REGEX REPLACE "^[0-9]+:" "" _v "${_v}")      # epoch
  string(REGEX REPLACE "-[^-]+$" "" _v "${_v}")       # Debian revision
  set(ENTRA_VERSION ${_v})
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_changelog})
configure_file(${PROJECT_SOURCE_DIR}/cmake/version.h.in
  ${PROJECT_BINARY_DIR}/include/entra/version.h @ONLY)
message(STATUS "entra-credd version ${ENTRA_VERSION}")
