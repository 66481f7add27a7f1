# The command line as a whole (issue 17): one option parser for every
# command, help and docs/CLI.md generated from / checked against its tables,
# -o and --json meanings, JSON escaping of paths.
mtmi_py_test(cli_options tests/cli/test_cli_options.py)
# Also under ASan+UBSan (scripts/test.sh): every parser path and the early
# exits of every command, leaks included.
set_tests_properties(cli_options PROPERTIES LABELS "ort;sanitize")
