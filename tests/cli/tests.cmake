# The command line as a whole (issue 17): one option parser for every
# command, help and docs/CLI.md generated from / checked against its tables,
# -o and --json meanings, JSON escaping of paths.
mtmi_py_test(cli_options tests/cli/test_cli_options.py)
