# One line per fuzz target; the owning layer's library provides the code.
imagesmith_fuzzer(template_parser_fuzzer SOURCES template_parser_fuzzer.cc json_mutator.cc
                  LIBS imagesmith_template)
imagesmith_fuzzer(arm_expression_fuzzer SOURCES arm_expression_fuzzer.cc LIBS imagesmith_template)
imagesmith_fuzzer(disk_vhd_fuzzer SOURCES disk_vhd_fuzzer.cc LIBS imagesmith_disk)
imagesmith_fuzzer(disk_qcow2_fuzzer SOURCES disk_qcow2_fuzzer.cc LIBS imagesmith_disk)
imagesmith_fuzzer(disk_probe_fuzzer SOURCES disk_probe_fuzzer.cc LIBS imagesmith_disk)
imagesmith_fuzzer(store_format_fuzzer SOURCES store_format_fuzzer.cc LIBS imagesmith_store)
imagesmith_fuzzer(agent_client_fuzzer SOURCES agent_client_fuzzer.cc LIBS imagesmith_vm)
imagesmith_fuzzer(auth_token_fuzzer SOURCES auth_token_fuzzer.cc LIBS imagesmith_auth)
imagesmith_fuzzer(http_request_fuzzer SOURCES http_request_fuzzer.cc LIBS imagesmith_server)
imagesmith_fuzzer(cyclecloud_template_fuzzer SOURCES cyclecloud_template_fuzzer.cc
                  LIBS imagesmith_cyclecloud)
