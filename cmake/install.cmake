# Install rules and the Debian package (doc/install.md).
#
#   cmake --install build --prefix P     P/bin/imagesmith
#                                        P/lib/imagesmith/imagesmith-agent (found from the
#                                          binary's own location: ../lib/imagesmith/)
#                                        P/share/doc/imagesmith/ (README, doc/, examples/)
#                                        P/share/man/man1/imagesmith*.1.gz
#                                        P/share/bash-completion/completions/imagesmith
#                                        P/share/zsh/vendor-completions/_imagesmith
#                                        P/lib/systemd/system/imagesmith.service
#   packaging/build-deb.sh                 build-deb/imagesmith_VERSION_amd64.deb (CPack + lintian)
#
# The man pages and the completion scripts are written by the built binary
# from its command registry (cli/docgen.h), so they always match it.
include(GNUInstallDirs)

if(NOT TARGET imagesmith OR NOT TARGET imagesmith-agent)
  return()
endif()

set(IMAGESMITH_MAINTAINER "imagesmith developers <imagesmith@example.org>"
    CACHE STRING "Maintainer of the Debian package")
# Under the prefix: /usr/lib/systemd/system in the package (lintian's place).
set(IMAGESMITH_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING "Where the systemd unit goes")

# --- generated from the binary: man pages and completion ---------------------
set(_gen ${CMAKE_BINARY_DIR}/generated)
add_custom_command(
  OUTPUT ${_gen}/man.stamp
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${_gen}/man
  COMMAND $<TARGET_FILE:imagesmith> __man ${_gen}/man
  # -n: no name or time stamp in the gzip header (reproducible).
  COMMAND sh -c "gzip -9nf ${_gen}/man/*.1"
  COMMAND $<TARGET_FILE:imagesmith> completion bash > ${_gen}/imagesmith.bash
  COMMAND $<TARGET_FILE:imagesmith> completion zsh > ${_gen}/_imagesmith
  COMMAND ${CMAKE_COMMAND} -E touch ${_gen}/man.stamp
  DEPENDS imagesmith
  COMMENT "Generating man pages and shell completion from the command registry"
  VERBATIM)
add_custom_target(imagesmith_docs ALL DEPENDS ${_gen}/man.stamp)

string(TIMESTAMP IMAGESMITH_PACKAGE_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${CMAKE_SOURCE_DIR}/packaging/changelog.in ${_gen}/changelog @ONLY)
add_custom_command(
  OUTPUT ${_gen}/changelog.gz
  COMMAND sh -c "gzip -9nc ${_gen}/changelog > ${_gen}/changelog.gz"
  DEPENDS ${_gen}/changelog VERBATIM)
add_custom_target(imagesmith_changelog ALL DEPENDS ${_gen}/changelog.gz)

# --- install rules -------------------------------------------------------------
install(TARGETS imagesmith RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Not GNUInstallDirs' LIBDIR: that is lib/<multiarch> on Debian, and the
# binary looks for ../lib/imagesmith/ (vm/overlay.h FindAgentBinary).
install(TARGETS imagesmith-agent RUNTIME DESTINATION lib/imagesmith)
set(_doc ${CMAKE_INSTALL_DATADIR}/doc/imagesmith)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${_doc})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/doc/ DESTINATION ${_doc}/doc)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/examples/ DESTINATION ${_doc}/examples)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/copyright ${_gen}/changelog.gz DESTINATION ${_doc})
install(DIRECTORY ${_gen}/man/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 FILES_MATCHING PATTERN "*.1.gz")
install(FILES ${_gen}/imagesmith.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME imagesmith)
install(FILES ${_gen}/_imagesmith DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
# The unit names the installed binary, so it is written at install time, when
# the prefix (--prefix, or /usr for the package) is known, straight into the
# destination (two installs at once never share a file in the build tree).
if(IS_ABSOLUTE "${IMAGESMITH_SYSTEMD_UNIT_DIR}")
  set(_unit_dir "\$ENV{DESTDIR}${IMAGESMITH_SYSTEMD_UNIT_DIR}")
else()
  set(_unit_dir "\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${IMAGESMITH_SYSTEMD_UNIT_DIR}")
endif()
install(CODE "
  file(READ \"${CMAKE_SOURCE_DIR}/packaging/imagesmith.service.in\" unit)
  string(REPLACE \"@BINDIR@\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\" unit \"\${unit}\")
  message(STATUS \"Installing: ${_unit_dir}/imagesmith.service\")
  file(MAKE_DIRECTORY \"${_unit_dir}\")
  file(WRITE \"${_unit_dir}/imagesmith.service\" \"\${unit}\")")
install(FILES ${CMAKE_SOURCE_DIR}/packaging/lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME imagesmith)

# --- the Debian package (CPack) -----------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME imagesmith)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "${IMAGESMITH_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${IMAGESMITH_MAINTAINER}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # imagesmith_VERSION_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "self-hosted factory for custom VM images")
# The long description; CPack puts the summary above it and indents each line.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "imagesmith builds, validates, versions and replicates virtual-machine images
on your own machines. It reads Azure VM Image Builder templates, builds real
Debian images from Debian's packages with mmdebstrap, runs the customizers
in a sandbox, boots the result under qemu to run its validations, and
publishes it to a gallery, a managed image or a fixed VHD.")
# Shared libraries come from dpkg-shlibdeps; the programs imagesmith runs are
# named here (doc/install.md lists which does what). util-linux (setpriv,
# unshare) and coreutils are essential.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "mmdebstrap, qemu-system-x86, qemu-utils, ovmf, seabios, grub-common, grub-pc-bin, grub-efi-amd64-bin, e2fsprogs, gdisk, mtools, dosfstools")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "openssh-client, ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
