# Writes OUT, a C++ file defining imagesmith::server::kOpenApiJson with the
# text of IN (the OpenAPI document served at /openapi.json).
file(READ "${IN}" content)
file(WRITE "${OUT}" "// Generated from src/server/openapi.json by embed_openapi.cmake.\n"
     "namespace imagesmith::server {\n"
     "extern const char kOpenApiJson[];\n"
     "const char kOpenApiJson[] = R\"OPENAPI(" "${content}" ")OPENAPI\";\n"
     "}  // namespace imagesmith::server\n")
