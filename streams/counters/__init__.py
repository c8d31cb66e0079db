"""counters job."""
