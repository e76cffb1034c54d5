# Read by cpack once per generator (CPACK_PROJECT_CONFIG_FILE, set in
# package.cmake), after CPackConfig.cmake: the decisions that depend on the
# generator being run or on the tools present when the package is made.

# The install step (package.cmake) puts the systemd unit where this
# generator's distributions keep them.
set(ENV{RINGGATE_CPACK_GENERATOR} "${CPACK_GENERATOR}")

if(CPACK_GENERATOR STREQUAL "DEB")
  if(CPACK_RINGGATE_TLS STREQUAL "openssl")
    set(_ringgate_tls_dep "libssl3")
  else()
    set(_ringgate_tls_dep "android-libboringssl")
  endif()
  # dpkg-shlibdeps (dpkg-dev) finds the versioned library packages the binary
  # links (libc6, liburing2, libyaml-0-2, the TLS library through its
  # RUNPATH). It needs file(1) too; without them the list is written out.
  # The TLS package is named either way: the binary may not link it yet.
  find_program(_ringgate_shlibdeps dpkg-shlibdeps)
  find_program(_ringgate_file file)
  if(_ringgate_shlibdeps AND _ringgate_file)
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
    set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, ${_ringgate_tls_dep}")
  else()
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
    set(CPACK_DEBIAN_PACKAGE_DEPENDS
        "adduser, libc6 (>= 2.34), liburing2 (>= 2.3), libyaml-0-2, libpcre2-8-0, ${_ringgate_tls_dep}")
  endif()
endif()
