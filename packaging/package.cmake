# Packages: `make package` (cd build && cpack -G DEB && cpack -G RPM) makes
# build/ringgate_<version>-1_<arch>.deb and build/ringgate-<version>-1.<arch>.rpm.
# Both install ringgate as a systemd service:
#
#   /usr/sbin/ringgate                     the binary (install(TARGETS) in CMakeLists.txt)
#   /etc/ringgate/ringgate.yaml            the configuration (conffile / %config(noreplace))
#   /etc/logrotate.d/ringgate              daily rotation of /var/log/ringgate/*.log (conffile)
#   /lib/systemd/system/ringgate.service   the unit (/usr/lib/systemd/system in the rpm)
#   /var/www/ringgate/index.html           what the default static route serves
#   /usr/share/doc/ringgate/               README.md, configuration.md, operations.md
#
# The maintainer scripts (packaging/deb/, packaging/rpm/) create the system user
# and group `ringgate` and /var/log/ringgate, and enable the service.
#
# Included from the top-level CMakeLists.txt, after the ringgate target.

set(RINGGATE_PKG_DIR ${CMAKE_CURRENT_LIST_DIR})

# Paths outside the prefix are absolute: they are what the packages contain,
# whatever CMAKE_INSTALL_PREFIX a plain `cmake --install` uses. Fixed, not
# options: the unit, the maintainer scripts and deb/conffiles name them too.
set(RINGGATE_SYSCONFDIR /etc/ringgate)
set(RINGGATE_WWWDIR /var/www/ringgate)

install(FILES ${RINGGATE_PKG_DIR}/ringgate.yaml DESTINATION ${RINGGATE_SYSCONFDIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${RINGGATE_PKG_DIR}/ringgate.logrotate DESTINATION /etc/logrotate.d
        RENAME ringgate PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${RINGGATE_PKG_DIR}/www/index.html DESTINATION ${RINGGATE_WWWDIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/configuration.md
              ${CMAKE_SOURCE_DIR}/docs/operations.md
        DESTINATION share/doc/ringgate OPTIONAL
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# The unit goes where each family keeps packaged units: /lib/systemd/system on
# Debian (what dh_installsystemd uses on bookworm), /usr/lib/systemd/system on
# rpm distributions (where /lib is a symbolic link that a package must not
# claim as a directory). install(FILES) cannot tell the generators apart, so
# packaging/cpack-project.cmake (read by cpack for each generator) exports the
# generator's name and the install step picks the directory then.
install(CODE "set(RINGGATE_UNIT_SOURCE \"${RINGGATE_PKG_DIR}/ringgate.service\")")
install(CODE [[
  if("$ENV{RINGGATE_CPACK_GENERATOR}" STREQUAL "RPM")
    set(_ringgate_unitdir /usr/lib/systemd/system)
  else()
    set(_ringgate_unitdir /lib/systemd/system)
  endif()
  file(INSTALL DESTINATION "${_ringgate_unitdir}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES "${RINGGATE_UNIT_SOURCE}")
]])

# ---------------------------------------------------------------------------
# Common

set(CPACK_PACKAGE_NAME ringgate)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "ringgate")
set(CPACK_PACKAGE_CONTACT "ringgate maintainers <maintainers@users.noreply.b-seed-6d153118.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "io_uring HTTP reverse proxy and API gateway")
set(CPACK_PACKAGE_DESCRIPTION
    "ringgate is an edge reverse proxy and API gateway written in C on io_uring.
It speaks strict HTTP/1.1 to clients and origin servers, answers
request-smuggling shapes with 400 and never forwards them, routes by host,
path prefix and method to upstreams or static files, and exposes Prometheus
metrics and health checks on a separate admin listener.

This package runs it as the systemd service ringgate.service, configured by
/etc/ringgate/ringgate.yaml.")
if(EXISTS ${CMAKE_SOURCE_DIR}/LICENSE)
  set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
endif()
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# `cpack` without -G: DEB, plus RPM when rpmbuild is there.
find_program(RINGGATE_RPMBUILD rpmbuild)
mark_as_advanced(RINGGATE_RPMBUILD)
if(RINGGATE_RPMBUILD)
  set(CPACK_GENERATOR "DEB;RPM")
else()
  set(CPACK_GENERATOR "DEB")
endif()
# Read by cpack once per generator, after CPackConfig.cmake.
set(CPACK_PROJECT_CONFIG_FILE ${RINGGATE_PKG_DIR}/cpack-project.cmake)
set(CPACK_RINGGATE_TLS ${RINGGATE_TLS})

# ---------------------------------------------------------------------------
# Debian

set(CPACK_DEBIAN_PACKAGE_NAME ringgate)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # ringgate_<version>-<release>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
# Depends: computed by dpkg-shlibdeps where it and file(1) are installed, else
# the explicit list; both decided at cpack time by cpack-project.cmake.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${RINGGATE_PKG_DIR}/deb/conffiles;${RINGGATE_PKG_DIR}/deb/postinst;${RINGGATE_PKG_DIR}/deb/prerm;${RINGGATE_PKG_DIR}/deb/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON) # scripts 0755, conffiles 0644

# ---------------------------------------------------------------------------
# RPM

set(CPACK_RPM_PACKAGE_NAME ringgate)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT) # ringgate-<version>-<release>.<arch>.rpm
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_PACKAGE_LICENSE "Proprietary")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_REQUIRES_PRE "shadow-utils")
set(CPACK_PACKAGE_RELOCATABLE OFF) # a service: the paths are fixed
set(CPACK_RPM_PACKAGE_RELOCATABLE OFF)
# Library requirements (liburing.so.2, libyaml-0.so.2, libc.so.6 ...) are found
# by rpmbuild's automatic dependency generator.
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
set(CPACK_RPM_PRE_INSTALL_SCRIPT_FILE ${RINGGATE_PKG_DIR}/rpm/pre)
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${RINGGATE_PKG_DIR}/rpm/post)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${RINGGATE_PKG_DIR}/rpm/preun)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${RINGGATE_PKG_DIR}/rpm/postun)
# CPack marks every other file installed to an absolute path %config; the page
# is not (as in the deb), hence its neutral %attr.
set(CPACK_RPM_USER_FILELIST
    "%config(noreplace) ${RINGGATE_SYSCONFDIR}/ringgate.yaml"
    "%config(noreplace) /etc/logrotate.d/ringgate"
    "%attr(0644,root,root) ${RINGGATE_WWWDIR}/index.html")
# Directories owned by the distribution (filesystem, systemd, logrotate, httpd):
# the package must not claim them.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /usr/sbin /usr/lib/systemd /usr/lib/systemd/system /etc/logrotate.d /var /var/www)

include(CPack)
