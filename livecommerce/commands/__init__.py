"""One module per ``livecommerce`` subcommand (see :mod:`livecommerce.cli`)."""
