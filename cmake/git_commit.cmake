# Writes OUT (a header) with the git commit the sources are at, for
# `imagesmith --version`. Run at every build (a custom target), and only
# touches OUT when the text changes, so nothing rebuilds needlessly.
#   cmake -DSOURCE_DIR=... -DOUT=... [-DFALLBACK=...] -P git_commit.cmake
# Outside a git checkout (a source tarball) the commit is FALLBACK, or
# "unknown".
set(commit "")
find_program(GIT git)
if(GIT)
  execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0)
    set(commit "")
  else()
    execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} diff --quiet HEAD -- .
                    RESULT_VARIABLE dirty ERROR_QUIET)
    if(NOT dirty EQUAL 0)
      string(APPEND commit "-dirty")
    endif()
  endif()
endif()
if(commit STREQUAL "")
  if(FALLBACK)
    set(commit "${FALLBACK}")
  else()
    set(commit "unknown")
  endif()
endif()
set(text "#pragma once\nnamespace imagesmith::cli {\ninline constexpr const char* kGitCommit = \"${commit}\";\n}\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
else()
  set(old "")
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()
