"""The sentiment job: comments in, scored comments and negative-opinion alerts out."""
