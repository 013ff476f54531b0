# What `cmake --install` puts where, besides the programs (credd/ and
# credctl/ install those into GNUInstallDirs' sbindir and bindir).
#
# Files read by a system service go where that service looks, which is
# not always under the prefix:
#  - pam_entra.so: the system's PAM module directory (pam_entra/), and
#    the pam-auth-update profile: /usr/share/pam-configs. PAM and
#    pam-auth-update look nowhere else, whatever the prefix.
#  - systemd unit, sysusers.d and tmpfiles.d: with prefix /usr, the
#    directories systemd.pc names (Debian 12: /lib/systemd/system,
#    /usr/lib/sysusers.d, /usr/lib/tmpfiles.d); with another prefix,
#    PREFIX/lib/systemd/... (systemd also reads /usr/local/lib/...).
# Every one is a cache variable (empty: the default), so a packager can
# override it. Runtime
# paths (/etc/credd, /var/lib/credd, /run/credd) are FHS defaults in
# include/entra/paths.h, not derived from the prefix.

# entra_dir(VAR default doc): VAR is a cache variable, empty for "the
# default" (computed again at every configure, so a later
# -DCMAKE_INSTALL_PREFIX still counts); _VAR holds the directory used.
function(entra_dir var default doc)
  set(${var} "" CACHE PATH "${doc} (empty: ${default})")
  if(${var})
    set(_${var} "${${var}}" PARENT_SCOPE)
  else()
    set(_${var} "${default}" PARENT_SCOPE)
  endif()
endfunction()

function(entra_systemd_dir var pcvar fallback doc)
  set(_dir "${CMAKE_INSTALL_PREFIX}/${fallback}")
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    pkg_get_variable(_pc systemd ${pcvar})
    if(_pc)
      set(_dir "${_pc}")
    endif()
  endif()
  entra_dir(${var} "${_dir}" "${doc}")
  set(_${var} "${_${var}}" PARENT_SCOPE)
endfunction()

entra_systemd_dir(ENTRA_SYSTEMD_UNIT_DIR systemdsystemunitdir lib/systemd/system
  "Where credd.service is installed")
entra_systemd_dir(ENTRA_SYSUSERS_DIR sysusersdir lib/sysusers.d
  "Where the sysusers.d file (credd user, credd-admin group) is installed")
entra_systemd_dir(ENTRA_TMPFILES_DIR tmpfilesdir lib/tmpfiles.d
  "Where the tmpfiles.d file (/var/lib/credd, /var/log/credd) is installed")
entra_dir(ENTRA_PAM_CONFIGS_DIR /usr/share/pam-configs
  "Where the pam-auth-update profile 'entra' is installed")
entra_dir(ENTRA_BASH_COMPLETION_DIR
  "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
  "Where credctl's bash completion is installed")

# The unit names the daemon by path: follow the sbindir.
file(READ ${PROJECT_SOURCE_DIR}/etc/systemd/credd.service _unit)
string(REPLACE "/usr/sbin/credd" "${CMAKE_INSTALL_FULL_SBINDIR}/credd"
  _unit "${_unit}")
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/etc/credd.service
  CONTENT "${_unit}" @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/etc/systemd/credd.service)

install(FILES ${PROJECT_BINARY_DIR}/etc/credd.service
  DESTINATION ${_ENTRA_SYSTEMD_UNIT_DIR})
install(FILES etc/sysusers.d/credd.conf DESTINATION ${_ENTRA_SYSUSERS_DIR})
install(FILES etc/tmpfiles.d/credd.conf DESTINATION ${_ENTRA_TMPFILES_DIR})
install(FILES etc/pam-configs/entra DESTINATION ${_ENTRA_PAM_CONFIGS_DIR})
install(FILES etc/bash-completion/credctl
  DESTINATION ${_ENTRA_BASH_COMPLETION_DIR})
# The example config and PAM lines: documentation, never /etc itself (an
# install must not overwrite a node's configuration).
install(FILES etc/credd.conf DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES etc/pam.d/entra DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/pam.d)
install(FILES man/credctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES man/credd.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES man/credd.8 man/pam_entra.8
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
