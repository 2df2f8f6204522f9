"""The `jdl` subcommands by family, each a function of the parsed arguments that returns the exit status;
`jdl.cli` builds the parser and dispatches to them."""
